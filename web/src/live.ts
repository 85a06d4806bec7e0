// One open conversation: its Solid store and the state of its subscription.
//
// Records are folded into the store with `produce` (fine-grained path updates); a `snapshot`
// frame is applied with `reconcile` keyed by id, so existing objects (and the DOM showing
// them) survive it. Streamed records (deltas, progress) are batched per animation frame; any
// other record first applies the pending batch, then itself, so a batch can never land after
// a structural record such as the `message.completed` of its message.
//
// A LiveSession does not own a connection: the tab's `Link` (link.ts) subscribes it, over the
// one WebSocket of the tab (socket.ts) or, as a fallback, an EventSource (sse.ts). After any
// disconnect the link resumes it from `resumeAfter()`: the last seq applied to the store.
import { batch } from "solid-js";
import { createStore, produce, reconcile, type SetStoreFunction } from "solid-js/store";
import { Api, type Decision } from "./api";
import { apply, emptyState, type SessionState, type WireRecord } from "./fold";

/** What the subscription is doing, shown to the user. */
export type LinkState = "connecting" | "live" | "catching-up" | "reconnecting" | "paused" | "failed" | "closed";

export interface Connection {
  state: LinkState;
  /** Consecutive failed attempts. */
  attempt: number;
  /** When the next attempt starts (ms since the epoch), while reconnecting. */
  retryAt: number | null;
  /** Why it failed, when it did. */
  detail: string;
  /** What carries the records: the tab's WebSocket, or an EventSource of this session. */
  transport: "ws" | "sse" | null;
}

export interface LiveOptions {
  api?: Api;
  /** Schedules a batch flush (default: the next animation frame, or 50 ms when frames are throttled). */
  schedule?: (flush: () => void) => () => void;
}

/** Record types batched per frame; every other type flushes the batch and applies at once. */
export const STREAMED_TYPES = new Set(["message.delta", "tool.args.delta", "job.progress"]);

/** A control frame (not a record): `snapshot`, `lagging`, `caught_up`, `heartbeat`, `ended`. */
export interface ControlFrame {
  control?: string;
  session?: string;
  at?: number;
  state?: SessionState;
  /** For `ended`: why the server ended the stream (`session_deleted`: for good). */
  reason?: string;
}

export class LiveSession {
  readonly state: SessionState;
  readonly connection: Connection;
  readonly api: Api;
  /** Records applied so far (each once), for tests and the status bar. */
  applied = 0;
  /** Batches applied so far. */
  batches = 0;
  /** Whether the store holds the server's state yet (`load` succeeded once). */
  loaded = false;
  /** Set by `close`: nothing is applied any more. */
  closed = false;

  private readonly setState: SetStoreFunction<SessionState>;
  private readonly setConnection: SetStoreFunction<Connection>;
  private readonly schedule: (flush: () => void) => () => void;
  private queue: WireRecord[] = [];
  private cancelFlush: (() => void) | null = null;
  private lastSeen = 0;

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
      transport: null,
    });
    this.api = options.api ?? new Api();
    this.schedule = options.schedule ?? nextFrame;
  }

  /** Load the session's folded state from the server (once; again with `force`). Throws `ApiError`. */
  async load(force = false): Promise<void> {
    if (this.loaded && !force) return;
    const snapshot = await this.api.session(this.id, this.token);
    if (this.closed) return;
    this.flush();
    // Also when it goes back in time: then the server lost records (a reset), and it is the truth.
    this.applySnapshot(snapshot.state, snapshot.seq);
    this.loaded = true;
  }

  /** Apply what is pending; the seq to subscribe after (the last applied one). */
  resumeAfter(): number {
    this.flush();
    return this.lastSeen;
  }

  /** Fold a record (or its JSON text) into the store, batched if it is a streamed one. */
  onRecord(data: WireRecord | string): void {
    const record = typeof data === "string" ? (JSON.parse(data) as WireRecord) : data;
    if (this.closed || record.session !== this.id || record.seq <= this.lastSeen) return; // never another's, never twice
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

  /** Handle a control frame: `snapshot`, `lagging` or `caught_up` (others are the link's). */
  onControl(name: string, data: ControlFrame | string): void {
    const frame = typeof data === "string" ? (JSON.parse(data) as ControlFrame) : data;
    if (this.closed || (frame.session !== undefined && frame.session !== this.id)) return;
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

  /** Set what the link says about this session's subscription. */
  report(patch: Partial<Connection>): void {
    if (this.closed && patch.state !== "closed") return;
    this.setConnection(patch);
  }

  /** Stop for good: apply what is pending, accept nothing more. The link is told by its owner. */
  close(): void {
    this.flush();
    this.report({ state: "closed", retryAt: null });
    this.closed = true;
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
}

/** The delay before attempt `attempt` (1, 2, ...): doubling from `base`, capped, with jitter. */
export function backoff(attempt: number, base: number, random: () => number = Math.random): number {
  return Math.min(8000, base * 2 ** (attempt - 1)) * (0.75 + random() / 2);
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
