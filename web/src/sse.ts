// The fallback when the server refuses the WebSocket: one EventSource per conversation.
//
// Browsers allow ~6 HTTP/1.1 connections per host, and the commands need some: only the
// MAX_STREAMS most recently shown conversations stream; the others are paused (their store is
// kept) and resume from their last applied seq when shown again. After a disconnect a stream
// resumes from the last applied seq, with backoff; after several failures it asks the server
// why (token revoked? session gone? server reset?) before trying again.
import { type Api, ApiError } from "./api";
import { EVENT_TYPES } from "./generated/types";
import type { LinkHooks, Transport } from "./link";
import { backoff, type LiveSession } from "./live";

/** The part of EventSource this module uses (so tests can drive it). */
export interface SourceLike {
  onopen: ((event: Event) => void) | null;
  onerror: ((event: Event) => void) | null;
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface SseOptions {
  api: Api;
  openSource?: (url: string) => SourceLike;
  backoffMs?: number;
  random?: () => number;
}

/** Conversations streamed at once over EventSource. */
export const MAX_STREAMS = 3;
const CONTROLS = ["snapshot", "lagging", "caught_up"] as const;
/** Why a stream may end for good: the status and message a conversation shows. */
const FOR_GOOD: Record<string, [number, string]> = {
  session_deleted: [404, "this conversation was deleted"],
  token_rotated: [401, "this conversation's token was rotated: open it with the new one"],
};

/** One conversation's EventSource, its retries and whether it may stream now. */
class Stream {
  source: SourceLike | null = null;
  retry: ReturnType<typeof setTimeout> | null = null;
  running = false;
  private failed = false;
  /** Bumped by every start and stop: a start that was stopped meanwhile does not connect. */
  private generation = 0;

  constructor(
    readonly live: LiveSession,
    private readonly options: Required<SseOptions>,
  ) {}

  async start(): Promise<void> {
    if (this.running || this.failed) return;
    this.running = true;
    const generation = ++this.generation;
    this.live.report({ transport: "sse", state: "connecting", attempt: 0, retryAt: null, detail: "" });
    try {
      await this.live.load();
    } catch (exc) {
      if (generation === this.generation) this.error(exc);
      return;
    }
    if (generation === this.generation) this.connect();
  }

  pause(): void {
    this.stop();
    if (!this.failed) this.live.report({ state: "paused", attempt: 0, retryAt: null, detail: "" });
  }

  stop(): void {
    this.running = false;
    this.generation++;
    this.source?.close();
    this.source = null;
    if (this.retry !== null) clearTimeout(this.retry);
    this.retry = null;
    this.live.flush();
  }

  private connect(): void {
    this.retry = null;
    if (!this.running || this.live.closed) return;
    const live = this.live;
    const url = this.options.api.eventsUrl(live.id, live.token, live.resumeAfter());
    const source = (this.source = this.options.openSource(url));
    const mine = () => this.source === source;
    source.onopen = () => mine() && live.report({ state: "live", attempt: 0, retryAt: null, detail: "" });
    source.onerror = () => mine() && this.disconnected();
    for (const type of EVENT_TYPES) source.addEventListener(type, (event) => mine() && live.onRecord(event.data));
    // A record of a type this version does not know arrives as a plain `message`: keep its seq.
    source.addEventListener("message", (event) => mine() && live.onRecord(event.data));
    for (const name of CONTROLS) source.addEventListener(name, (event) => mine() && live.onControl(name, event.data));
    // The session was deleted, or its token rotated (through any server process): the stream
    // ends for good, and EventSource must not reconnect with what no longer opens it.
    source.addEventListener("ended", (event) => {
      if (!mine()) return;
      const frame = JSON.parse(event.data) as { reason?: string };
      const gone = frame.reason ? FOR_GOOD[frame.reason] : undefined;
      if (!gone) return;
      this.stop();
      this.error(new ApiError(gone[0], frame.reason ?? "", gone[1]));
    });
  }

  private disconnected(): void {
    this.source?.close();
    this.source = null;
    this.live.flush(); // resume from the last *applied* seq: apply what arrived first
    if (!this.running || this.live.closed) return;
    const attempt = this.live.connection.attempt + 1;
    const delay = backoff(attempt, this.options.backoffMs, this.options.random);
    this.live.report({ state: "reconnecting", attempt, retryAt: Date.now() + delay, detail: "" });
    this.retry = setTimeout(() => void this.reconnect(attempt), delay);
  }

  private async reconnect(attempt: number): Promise<void> {
    if (!this.running) return;
    if (attempt >= 3) {
      // Several failures in a row: ask why before trying again (gone? token revoked? server reset?).
      try {
        await this.live.load(true);
      } catch (exc) {
        if (exc instanceof ApiError && [401, 403, 404].includes(exc.status)) return this.error(exc);
      }
    }
    this.connect();
  }

  private error(exc: unknown): void {
    if (exc instanceof ApiError && exc.status === 0) {
      this.disconnected(); // the server is unreachable: keep trying
      return;
    }
    this.failed = true;
    this.running = false;
    const detail = exc instanceof Error ? exc.message : String(exc);
    this.live.report({ state: "failed", retryAt: null, detail });
  }
}

export class SseLink implements Transport {
  readonly kind = "sse";
  /** Least recently shown first. */
  private readonly streams = new Map<string, Stream>();
  private readonly options: Required<SseOptions>;

  constructor(
    private readonly hooks: LinkHooks,
    options: SseOptions,
  ) {
    this.options = {
      api: options.api,
      openSource: options.openSource ?? ((url) => new EventSource(url)),
      backoffMs: options.backoffMs ?? 300,
      random: options.random ?? Math.random,
    };
    hooks.status({ transport: "sse", state: "open", attempt: 0 });
  }

  attach(live: LiveSession): void {
    this.streams.set(live.id, new Stream(live, this.options));
    this.focus(live);
  }

  detach(live: LiveSession): void {
    const stream = this.streams.get(live.id);
    if (stream?.live !== live) return;
    stream.stop();
    this.streams.delete(live.id);
  }

  focus(live: LiveSession): void {
    const stream = this.streams.get(live.id);
    if (stream?.live !== live) return;
    this.streams.delete(live.id);
    this.streams.set(live.id, stream); // most recently shown last
    void stream.start();
    let over = this.streams.size - MAX_STREAMS;
    for (const other of this.streams.values()) {
      if (over-- <= 0) break;
      if (other.running) other.pause();
    }
  }

  close(): void {
    for (const stream of this.streams.values()) stream.stop();
    this.streams.clear();
    this.hooks.status({ state: "closed" });
  }
}
