// Without the WebSocket (refused by the server, or none here): one event stream per conversation.
//
// A browser allows ~6 HTTP/1.1 connections per host, and the commands need some: there only the
// MAX_STREAMS most recently shown conversations stream; the others are paused (their store is
// kept) and resume from their last applied seq when shown again. After a disconnect a stream
// resumes from the last applied seq, with backoff; after several failures it asks the server
// why (token revoked? session gone? server reset?) before trying again.
import { type Api, ApiError } from "./api.js";
import type { Transport, TransportHooks } from "./connection.js";
import type { Conversation } from "./conversation.js";
import { FetchEventSource } from "./eventsource.js";
import { EVENT_TYPES } from "./generated/types.js";
import { backoff } from "./schedule.js";

/** The part of EventSource this module uses (so tests can drive it). */
export interface SourceLike {
  onopen: ((event: Event) => void) | null;
  onerror: ((event: Event) => void) | null;
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface SseOptions {
  api: Api;
  /** Default: the global EventSource, else a fetch-based reader (Node). */
  openSource?: (url: string) => SourceLike;
  /** Conversations streamed at once (default: MAX_STREAMS in a browser, else all). */
  maxStreams?: number;
  backoffMs?: number;
  random?: () => number;
}

/** Conversations a browser streams at once without the WebSocket. */
export const MAX_STREAMS = 3;
const CONTROLS = ["snapshot", "lagging", "caught_up"] as const;
/** The attempt from which a reconnect first asks the server why the stream failed. */
const ASK_WHY = 3;
/** Statuses that retrying cannot change: the token is wrong or rotated, the session is gone. */
const FATAL = [401, 403, 404];
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
    readonly conversation: Conversation,
    private readonly options: Required<SseOptions>,
  ) {}

  async start(): Promise<void> {
    if (this.running || this.failed) return;
    this.running = true;
    const generation = ++this.generation;
    this.conversation.report({ transport: "sse", state: "connecting", attempt: 0, retryAt: null, detail: "" });
    try {
      await this.conversation.load();
    } catch (exc) {
      if (generation === this.generation) this.error(exc);
      return;
    }
    if (generation === this.generation) this.connect();
  }

  pause(): void {
    this.stop();
    if (!this.failed) this.conversation.report({ state: "paused", attempt: 0, retryAt: null, detail: "" });
  }

  stop(): void {
    this.running = false;
    this.generation++;
    this.source?.close();
    this.source = null;
    if (this.retry !== null) clearTimeout(this.retry);
    this.retry = null;
    this.conversation.flush();
  }

  private connect(): void {
    this.retry = null;
    if (!this.running || this.conversation.closed) return;
    const chat = this.conversation;
    const url = this.options.api.eventsUrl(chat.id, chat.token, chat.resumeAfter());
    const source = (this.source = this.options.openSource(url));
    const mine = () => this.source === source;
    source.onopen = () => mine() && chat.report({ state: "live", attempt: 0, retryAt: null, detail: "" });
    source.onerror = () => mine() && this.disconnected();
    for (const type of EVENT_TYPES) source.addEventListener(type, (event) => mine() && chat.onRecord(event.data));
    // A record of a type this version does not know arrives as a plain `message`: keep its seq.
    source.addEventListener("message", (event) => mine() && chat.onRecord(event.data));
    for (const name of CONTROLS) source.addEventListener(name, (event) => mine() && chat.onControl(name, event.data));
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
    // A reader that saw the HTTP status (not EventSource) knows a refusal at once: ask why now.
    const refused = FATAL.includes((this.source as { status?: number } | null)?.status ?? 0);
    this.source?.close();
    this.source = null;
    this.conversation.flush(); // resume from the last *applied* seq: apply what arrived first
    if (!this.running || this.conversation.closed) return;
    const attempt = refused ? ASK_WHY : this.conversation.status.attempt + 1;
    const delay = backoff(attempt, this.options.backoffMs, this.options.random);
    this.conversation.report({ state: "reconnecting", attempt, retryAt: Date.now() + delay, detail: "" });
    this.retry = setTimeout(() => void this.reconnect(attempt), delay);
  }

  private async reconnect(attempt: number): Promise<void> {
    if (!this.running) return;
    if (attempt >= ASK_WHY) {
      // Several failures in a row: ask why before trying again (gone? token revoked? server reset?).
      try {
        await this.conversation.load(true);
      } catch (exc) {
        if (exc instanceof ApiError && FATAL.includes(exc.status)) return this.error(exc);
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
    this.conversation.report({ state: "failed", retryAt: null, detail });
  }
}

export class SseTransport implements Transport {
  readonly kind = "sse";
  /** Least recently shown first. */
  private readonly streams = new Map<string, Stream>();
  private readonly options: Required<SseOptions>;

  constructor(
    private readonly hooks: TransportHooks,
    options: SseOptions,
  ) {
    this.options = {
      api: options.api,
      openSource: options.openSource ?? defaultSource,
      maxStreams: options.maxStreams ?? (typeof document === "undefined" ? Infinity : MAX_STREAMS),
      backoffMs: options.backoffMs ?? 300,
      random: options.random ?? Math.random,
    };
    hooks.status({ transport: "sse", state: "open", attempt: 0 });
  }

  attach(conversation: Conversation): void {
    this.streams.set(conversation.id, new Stream(conversation, this.options));
    this.focus(conversation);
  }

  detach(conversation: Conversation): void {
    const stream = this.streams.get(conversation.id);
    if (stream?.conversation !== conversation) return;
    stream.stop();
    this.streams.delete(conversation.id);
  }

  focus(conversation: Conversation): void {
    const stream = this.streams.get(conversation.id);
    if (stream?.conversation !== conversation) return;
    this.streams.delete(conversation.id);
    this.streams.set(conversation.id, stream); // most recently shown last
    void stream.start();
    let over = this.streams.size - this.options.maxStreams;
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

function defaultSource(url: string): SourceLike {
  return typeof EventSource === "function" ? new EventSource(url) : new FetchEventSource(url);
}
