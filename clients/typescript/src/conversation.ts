// One open conversation: its store, the state of its subscription, and its commands.
//
// A Conversation does not own a connection: a `Connection` (connection.ts) subscribes it, over
// one WebSocket shared by every conversation (socket.ts) or, as a fallback, a stream of its own
// (sse.ts). After any disconnect the connection resumes it from `resumeAfter()`: the last seq
// applied to its store, so no record is applied twice or skipped.
import { Api, type Decision, type EventInput, type RequestOptions } from "./api.js";
import type { SessionState, WireRecord } from "./fold.js";
import { type Host, type HostFactory, plainHost } from "./host.js";
import type { Scheduler } from "./schedule.js";
import { type ChangeListener, ConversationStore } from "./store.js";

/** What a conversation's subscription is doing. */
export type SubscriptionState =
  | "connecting"
  | "live"
  | "catching-up"
  | "reconnecting"
  | "paused"
  | "failed"
  | "closed";

export interface SubscriptionStatus {
  state: SubscriptionState;
  /** Consecutive failed attempts. */
  attempt: number;
  /** When the next attempt starts (ms since the epoch), while reconnecting. */
  retryAt: number | null;
  /** Why it failed, when it did. */
  detail: string;
  /** What carries the records: the shared WebSocket, or a stream of this session. */
  transport: "ws" | "sse" | null;
}

export interface ConversationOptions {
  api?: Api;
  /** Where its state lives (default: plain objects; the SolidJS adapter passes its stores). */
  host?: HostFactory;
  /** When a batch of streamed records is applied (default: per animation frame, or every 16 ms). */
  schedule?: Scheduler;
}

/** A control frame (not a record): `snapshot`, `lagging`, `caught_up`, `heartbeat`, `ended`. */
export interface ControlFrame {
  control?: string;
  session?: string;
  at?: number;
  state?: SessionState;
  /** For `ended`: why the server ended the stream (`session_deleted`, `token_rotated`: for good). */
  reason?: string;
}

export class Conversation {
  readonly store: ConversationStore;
  readonly api: Api;
  /** Whether the store holds the server's state yet (`load` succeeded once). */
  loaded = false;
  /** Set by `close`: nothing is applied any more. */
  closed = false;

  private readonly statusHost: Host<SubscriptionStatus>;
  private readonly statusListeners = new Set<(status: SubscriptionStatus) => void>();
  private readonly closeListeners = new Set<() => void>();

  constructor(
    readonly id: string,
    readonly token: string,
    options: ConversationOptions = {},
  ) {
    const host = options.host ?? plainHost;
    this.store = new ConversationStore(id, { host, schedule: options.schedule });
    this.statusHost = host<SubscriptionStatus>({
      state: "connecting",
      attempt: 0,
      retryAt: null,
      detail: "",
      transport: null,
    });
    this.api = options.api ?? new Api();
  }

  /** The folded state (reactive under an adapter). */
  get state(): SessionState {
    return this.store.state;
  }

  /** What the subscription is doing (reactive under an adapter). */
  get status(): SubscriptionStatus {
    return this.statusHost.value;
  }

  /** The seq of the last record applied to the store. */
  get seq(): number {
    return this.store.state.seq;
  }

  /** Records applied so far (each once). */
  get applied(): number {
    return this.store.applied;
  }

  /** Batches applied so far. */
  get batches(): number {
    return this.store.batches;
  }

  /** Hear what each applied batch changed. */
  subscribe(listener: ChangeListener): () => void {
    return this.store.subscribe(listener);
  }

  /** Hear every change of the subscription's status. */
  onStatus(listener: (status: SubscriptionStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** Hear that the conversation closes (its connection detaches it). */
  onClose(listener: () => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Load the session's folded state from the server (once; again with `force`). Throws `ApiError`. */
  async load(force = false): Promise<void> {
    if (this.loaded && !force) return;
    const snapshot = await this.api.session(this.id, this.token);
    if (this.closed) return;
    this.store.reset(snapshot.state, snapshot.seq);
    this.loaded = true;
  }

  /** Apply what is pending; the seq to subscribe after (the last applied one). */
  resumeAfter(): number {
    this.store.flush();
    return this.store.lastSeq;
  }

  /** Fold a record (or its JSON text) into the store, batched if it is a streamed one. */
  onRecord(data: WireRecord | string): void {
    if (this.closed) return;
    this.store.push(typeof data === "string" ? (JSON.parse(data) as WireRecord) : data);
  }

  /** Handle a control frame: `snapshot`, `lagging` or `caught_up` (the others are the connection's). */
  onControl(name: string, data: ControlFrame | string): void {
    const frame = typeof data === "string" ? (JSON.parse(data) as ControlFrame) : data;
    if (this.closed || (frame.session !== undefined && frame.session !== this.id)) return;
    if (name === "snapshot" && frame.state && typeof frame.at === "number") {
      this.store.reset(frame.state, frame.at);
    } else if (name === "lagging") {
      this.report({ state: "catching-up" });
    } else if (name === "caught_up") {
      this.report({ state: "live" });
    }
  }

  /** Apply every pending record now. */
  flush(): void {
    this.store.flush();
  }

  /** Set what the connection says about this conversation's subscription. */
  report(patch: Partial<SubscriptionStatus>): void {
    if (this.closed && patch.state !== "closed") return;
    this.statusHost.update((status) => Object.assign(status, patch));
    for (const listener of [...this.statusListeners]) listener(this.status);
  }

  /** Stop for good: apply what is pending, accept nothing more; its connection stops subscribing it. */
  close(): void {
    if (this.closed) return;
    this.store.close();
    this.report({ state: "closed", retryAt: null });
    this.closed = true;
    for (const listener of [...this.closeListeners]) listener();
    this.closeListeners.clear();
    this.statusListeners.clear();
  }

  // ---------------------------------------------------------------- commands

  sendTurn(text: string, options?: RequestOptions) {
    return this.api.sendTurn(this.id, this.token, text, options);
  }

  cancelTurn(turn: string) {
    return this.api.cancelTurn(this.id, this.token, turn);
  }

  startJob(title: string, prompt: string, options?: RequestOptions) {
    return this.api.startJob(this.id, this.token, title, prompt, options);
  }

  cancelJob(job: string) {
    return this.api.cancelJob(this.id, this.token, job);
  }

  resolveApproval(approval: string, decision: Decision, by?: string) {
    return this.api.resolveApproval(this.id, this.token, approval, decision, by);
  }

  rename(title: string, options?: RequestOptions) {
    return this.api.rename(this.id, this.token, title, options);
  }

  publish(events: EventInput[], options?: RequestOptions) {
    return this.api.publish(this.id, this.token, events, options);
  }
}
