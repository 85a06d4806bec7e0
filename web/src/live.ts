// One open conversation: its Solid store, its one subscription and its connection state.
//
// Records are folded into the store with `produce` (fine-grained path updates); a `snapshot`
// frame is applied with `reconcile` keyed by id, so existing objects (and the DOM showing
// them) survive it. Streamed records (deltas, progress) are batched per animation frame; any
// other record first applies the pending batch, then itself, so a batch can never land after
// a structural record such as the `message.completed` of its message. After any disconnect
// the subscription resumes from the last applied seq, with backoff.
import { batch } from "solid-js";
import { createStore, produce, reconcile, type SetStoreFunction } from "solid-js/store";
import { Api, ApiError, type Decision } from "./api";
import { apply, emptyState, type SessionState, type WireRecord } from "./fold";
import { EVENT_TYPES } from "./generated/types";

/** What the subscription is doing, shown to the user. */
export type LinkState = "connecting" | "live" | "catching-up" | "reconnecting" | "failed" | "closed";

export interface Connection {
  state: LinkState;
  /** Consecutive failed attempts. */
  attempt: number;
  /** When the next attempt starts (ms since the epoch), while reconnecting. */
  retryAt: number | null;
  /** Why it failed, when it did. */
  detail: string;
}

/** The part of EventSource this module uses (so tests can drive it). */
export interface SourceLike {
  onopen: ((event: Event) => void) | null;
  onerror: ((event: Event) => void) | null;
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface LiveOptions {
  api?: Api;
  /** Opens the SSE stream (default: `new EventSource(url)`). */
  openSource?: (url: string) => SourceLike;
  /** Schedules a batch flush (default: the next animation frame, or 50 ms when frames are throttled). */
  schedule?: (flush: () => void) => () => void;
  /** Backoff base in ms. */
  backoffMs?: number;
  random?: () => number;
}

/** Record types batched per frame; every other type flushes the batch and applies at once. */
export const STREAMED_TYPES = new Set(["message.delta", "tool.args.delta", "job.progress"]);

const CONTROLS = ["snapshot", "lagging", "caught_up"] as const;
const MAX_BACKOFF_MS = 8000;

export class LiveSession {
  readonly state: SessionState;
  readonly connection: Connection;
  /** Records applied so far (each once), for tests and the status bar. */
  applied = 0;
  /** Batches applied so far. */
  batches = 0;

  private readonly setState: SetStoreFunction<SessionState>;
  private readonly setConnection: SetStoreFunction<Connection>;
  private readonly api: Api;
  private readonly openSource: (url: string) => SourceLike;
  private readonly schedule: (flush: () => void) => () => void;
  private readonly backoffMs: number;
  private readonly random: () => number;
  private queue: WireRecord[] = [];
  private cancelFlush: (() => void) | null = null;
  private lastSeen = 0;
  private source: SourceLike | null = null;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private closed = false;

  constructor(
    readonly id: string,
    readonly token: string,
    options: LiveOptions = {},
  ) {
    [this.state, this.setState] = createStore<SessionState>(emptyState());
    [this.connection, this.setConnection] = createStore<Connection>({
      state: "connecting",
      attempt: 0,
      retryAt: null,
      detail: "",
    });
    this.api = options.api ?? new Api();
    this.openSource = options.openSource ?? ((url) => new EventSource(url));
    this.schedule = options.schedule ?? nextFrame;
    this.backoffMs = options.backoffMs ?? 300;
    this.random = options.random ?? Math.random;
  }

  /** Load the session's state, then subscribe to what follows. */
  async start(): Promise<void> {
    try {
      const snapshot = await this.api.session(this.id, this.token);
      if (this.closed) return;
      this.applySnapshot(snapshot.state, snapshot.seq);
      this.connect();
    } catch (exc) {
      this.failed(exc);
    }
  }

  /** Subscribe from the last applied seq (used by `start` and after every disconnect). */
  connect(): void {
    if (this.closed) return;
    this.flush();
    this.retry = null;
    const after = this.lastSeen;
    const source = (this.source = this.openSource(this.api.eventsUrl(this.id, this.token, after)));
    source.onopen = () => {
      if (this.source !== source) return;
      this.setConnection({ state: "live", attempt: 0, retryAt: null, detail: "" });
    };
    source.onerror = () => {
      if (this.source === source) this.disconnected();
    };
    for (const type of EVENT_TYPES)
      source.addEventListener(type, (event) => this.source === source && this.onRecord(event.data));
    // A record of a type this version does not know arrives as a plain `message`: keep its seq.
    source.addEventListener("message", (event) => this.source === source && this.onRecord(event.data));
    for (const name of CONTROLS)
      source.addEventListener(name, (event) => this.source === source && this.onControl(name, event.data));
  }

  /** Fold a record (as its JSON text) into the store, batched if it is a streamed one. */
  onRecord(text: string): void {
    const record = JSON.parse(text) as WireRecord;
    if (record.session !== this.id || record.seq <= this.lastSeen) return; // never another session's, never twice
    this.lastSeen = record.seq;
    this.queue.push(record);
    if (!STREAMED_TYPES.has(record.type)) {
      this.flush();
    } else if (this.cancelFlush === null) {
      this.cancelFlush = this.schedule(() => {
        this.cancelFlush = null;
        this.flush();
      });
    }
  }

  /** Handle a control frame: `snapshot`, `lagging` or `caught_up`. */
  onControl(name: string, text: string): void {
    const frame = JSON.parse(text) as { session?: string; at?: number; state?: SessionState };
    if (frame.session !== undefined && frame.session !== this.id) return;
    if (name === "snapshot" && frame.state && typeof frame.at === "number") {
      this.flush();
      this.applySnapshot(frame.state, frame.at);
    } else if (name === "lagging") {
      this.setConnection("state", "catching-up");
    } else if (name === "caught_up") {
      this.setConnection("state", "live");
    }
  }

  /** Apply every pending record now, in one store update. */
  flush(): void {
    if (this.cancelFlush !== null) {
      this.cancelFlush();
      this.cancelFlush = null;
    }
    if (this.queue.length === 0) return;
    const records = this.queue;
    this.queue = [];
    this.setState(
      produce((state) => {
        for (const record of records) apply(state, record);
      }),
    );
    this.applied += records.length;
    this.batches += 1;
  }

  /** The seq of the last record applied to the store. */
  get seq(): number {
    return this.state.seq;
  }

  /** Stop the subscription for good. */
  close(): void {
    this.closed = true;
    this.flush();
    this.source?.close();
    this.source = null;
    if (this.retry !== null) clearTimeout(this.retry);
    this.setConnection({ state: "closed", retryAt: null });
  }

  // ---------------------------------------------------------------- commands

  sendTurn(text: string) {
    return this.api.sendTurn(this.id, this.token, text);
  }

  cancelTurn(turn: string) {
    return this.api.cancelTurn(this.id, this.token, turn);
  }

  startJob(title: string, prompt: string) {
    return this.api.startJob(this.id, this.token, title, prompt);
  }

  cancelJob(job: string) {
    return this.api.cancelJob(this.id, this.token, job);
  }

  resolveApproval(approval: string, decision: Decision, by: string) {
    return this.api.resolveApproval(this.id, this.token, approval, decision, by);
  }

  // ---------------------------------------------------------------- internals

  private applySnapshot(state: SessionState, at: number): void {
    batch(() => {
      this.setState(reconcile(state, { key: "id", merge: true }));
      if (this.state.seq !== at) this.setState("seq", at);
    });
    this.lastSeen = at;
  }

  private disconnected(): void {
    this.source?.close();
    this.source = null;
    this.flush(); // resume from the last *applied* seq: apply what arrived first
    if (this.closed) return;
    const attempt = this.connection.attempt + 1;
    const delay = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2 ** (attempt - 1)) * (0.75 + this.random() / 2);
    this.setConnection({ state: "reconnecting", attempt, retryAt: Date.now() + delay, detail: "" });
    this.retry = setTimeout(() => void this.reconnect(attempt), delay);
  }

  private async reconnect(attempt: number): Promise<void> {
    if (this.closed) return;
    if (attempt >= 3) {
      // Several failures in a row: ask why before trying again (gone? token revoked? server reset?).
      try {
        const snapshot = await this.api.session(this.id, this.token);
        if (snapshot.seq < this.lastSeen) this.applySnapshot(snapshot.state, snapshot.seq);
      } catch (exc) {
        if (exc instanceof ApiError && [401, 403, 404].includes(exc.status)) return this.failed(exc);
      }
    }
    this.connect();
  }

  private failed(exc: unknown): void {
    if (exc instanceof ApiError && exc.status === 0) {
      this.disconnected(); // the server is unreachable: keep trying
      return;
    }
    const detail = exc instanceof Error ? exc.message : String(exc);
    this.setConnection({ state: "failed", retryAt: null, detail });
  }
}

/** Run `flush` on the next animation frame, or after 50 ms if frames are not coming (hidden tab). */
export function nextFrame(flush: () => void): () => void {
  let done = false;
  const run = () => {
    if (done) return;
    done = true;
    cancelAnimationFrame(frame);
    clearTimeout(timer);
    flush();
  };
  const frame = requestAnimationFrame(run);
  const timer = setTimeout(run, 50);
  return () => {
    done = true;
    cancelAnimationFrame(frame);
    clearTimeout(timer);
  };
}
