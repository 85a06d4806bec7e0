// Every open conversation over one WebSocket (`/v1/ws`).
//
// Each conversation is loaded once over HTTP, then subscribed with `{op: "subscribe", session,
// token, after, batch: true}` where `after` is the last seq applied to ITS store. With `batch` the
// server sends each batch it has ready as ONE frame, a JSON array of records and control frames;
// its items are applied in order exactly as single frames (a server without the option sends
// single frames, which are handled too). Items are routed by their `session` to that
// conversation only (and a Conversation drops any record not its own). When the
// socket drops, every conversation applies what it has, and on the next socket each is
// subscribed again from its own last applied seq, with backoff between sockets. A subscription
// the server ends (`{"control": "ended"}`) is subscribed again alone.
import { type Api, ApiError } from "./api.js";
import type { Transport, TransportHooks } from "./connection.js";
import type { ControlFrame, Conversation } from "./conversation.js";
import type { WireRecord } from "./fold.js";
import { backoff } from "./schedule.js";

/** The part of WebSocket this module uses (so tests can drive it). */
/**
 * The part of a WebSocket the transport uses: the browser's, Node 22's, or the `ws` package's.
 * The transport sets the handlers; it calls them with `onclose({code, reason})` and
 * `onmessage({data})` (the `never` lets every implementation's own event types fit).
 */
export interface SocketLike {
  onopen: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  /** Set to hear errors: a close follows each (the `ws` package throws an error nobody hears). */
  onerror?: ((event: never) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

interface CloseLike {
  code: number;
  reason: string;
}

export interface SocketOptions {
  api: Api;
  url: string;
  openSocket: (url: string) => SocketLike;
  backoffMs?: number;
  random?: () => number;
}

interface Sub {
  conversation: Conversation;
  /** The id of the subscribe op awaiting its reply. */
  req: number | null;
  subscribed: boolean;
  loading: boolean;
  /** Refused for good (token, gone): not subscribed again. */
  dead: boolean;
  attempt: number;
  retry: ReturnType<typeof setTimeout> | null;
}

interface Reply {
  reply: number;
  ok?: boolean;
  error?: { code: string; message: string; status: number };
}

/** One frame's JSON, or one item of a batched frame: a reply, a control frame or a record. */
type Item = Reply & ControlFrame & WireRecord & { error?: Reply["error"] };

/** Close code of a refused socket (the server's "origin not allowed"). */
const POLICY_VIOLATION = 1008;
const FATAL = [401, 403, 404];

export class SocketTransport implements Transport {
  readonly kind = "ws";
  private socket: SocketLike | null = null;
  private opened = false;
  private closed = false;
  private readonly subs = new Map<string, Sub>();
  private readonly pending = new Map<number, Sub | null>();
  private nextId = 1;
  private attempt = 0;
  /** Handshakes that failed while the server answered HTTP, in a row. */
  private refusals = 0;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private readonly backoffMs: number;
  private readonly random: () => number;

  constructor(
    private readonly hooks: TransportHooks,
    private readonly options: SocketOptions,
  ) {
    this.backoffMs = options.backoffMs ?? 300;
    this.random = options.random ?? Math.random;
  }

  attach(conversation: Conversation): void {
    const sub: Sub = {
      conversation,
      req: null,
      subscribed: false,
      loading: false,
      dead: false,
      attempt: 0,
      retry: null,
    };
    this.subs.set(conversation.id, sub);
    const state = this.attempt > 0 ? "reconnecting" : "connecting";
    conversation.report({ transport: "ws", state, attempt: this.attempt });
    if (this.socket === null && this.retry === null && !this.closed) this.connect();
    this.start(sub);
  }

  detach(conversation: Conversation): void {
    const sub = this.subs.get(conversation.id);
    if (!sub || sub.conversation !== conversation) return;
    this.subs.delete(conversation.id);
    if (sub.retry !== null) clearTimeout(sub.retry);
    if (this.opened && (sub.subscribed || sub.req !== null)) {
      const id = this.nextId++;
      this.pending.set(id, null);
      this.send({ op: "unsubscribe", id, session: conversation.id });
    }
  }

  focus(): void {}

  close(): void {
    this.closed = true;
    if (this.retry !== null) clearTimeout(this.retry);
    for (const sub of this.subs.values()) if (sub.retry !== null) clearTimeout(sub.retry);
    this.subs.clear();
    const socket = this.socket;
    this.drop();
    socket?.close(1000, "closed");
  }

  // ---------------------------------------------------------------- the socket

  private connect(): void {
    this.retry = null;
    if (this.closed) return;
    const socket = (this.socket = this.options.openSocket(this.options.url));
    this.hooks.status({ state: this.attempt > 0 ? "reconnecting" : "connecting" });
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.opened = true;
      this.attempt = 0;
      this.refusals = 0;
      this.hooks.status({ state: "open", attempt: 0 });
      for (const sub of this.subs.values()) this.start(sub);
    };
    socket.onmessage = (event: { data: unknown }) => {
      if (this.socket === socket && typeof event.data === "string") this.onFrame(event.data);
    };
    socket.onerror = () => {}; // the close that follows says what happened
    socket.onclose = (event: CloseLike) => {
      if (this.socket === socket) void this.lost(event.code, event.reason);
    };
  }

  /** Forget the socket and every subscription made over it (they died with it). */
  private drop(): boolean {
    const wasOpen = this.opened;
    // An error may still come after the close: keep hearing (and ignoring) it.
    if (this.socket) this.socket.onopen = this.socket.onmessage = this.socket.onclose = null;
    this.socket = null;
    this.opened = false;
    this.pending.clear();
    for (const sub of this.subs.values()) {
      sub.req = null;
      sub.subscribed = false;
      if (sub.retry !== null) clearTimeout(sub.retry);
      sub.retry = null;
      sub.conversation.flush(); // resume from the last *applied* seq: apply what arrived first
    }
    return wasOpen;
  }

  private async lost(code: number, reason: string): Promise<void> {
    const wasOpen = this.drop();
    if (this.closed) return;
    if (code === POLICY_VIOLATION) return this.hooks.refused(`the server refused the WebSocket: ${reason || code}`);
    if (!wasOpen && (await this.options.api.reachable())) {
      // The handshake failed but HTTP answers: refused (a proxy without WebSockets, an origin check).
      // Twice in a row, so a server that just came back up is given one more try.
      if (++this.refusals >= 2) return this.hooks.refused("the server answers HTTP but not the WebSocket");
    }
    if (this.closed || this.socket !== null) return;
    const attempt = ++this.attempt;
    const delay = backoff(attempt, this.backoffMs, this.random);
    const retryAt = Date.now() + delay;
    this.hooks.status({ state: "reconnecting", attempt });
    for (const sub of this.subs.values()) {
      if (!sub.dead) sub.conversation.report({ state: "reconnecting", attempt, retryAt, detail: "" });
    }
    this.retry = setTimeout(() => this.connect(), delay);
  }

  private send(message: Record<string, unknown>): void {
    this.socket?.send(JSON.stringify(message));
  }

  // ---------------------------------------------------------------- subscriptions

  /** Load the conversation if needed, then subscribe it (when the socket is open). */
  private start(sub: Sub): void {
    if (sub.dead || sub.loading || sub.req !== null || sub.subscribed) return;
    if (sub.conversation.loaded) {
      if (this.opened) this.subscribe(sub);
      return;
    }
    sub.loading = true;
    sub.conversation.load().then(
      () => {
        sub.loading = false;
        if (this.subs.get(sub.conversation.id) === sub) this.start(sub);
      },
      (exc: unknown) => {
        sub.loading = false;
        if (exc instanceof ApiError && exc.status === 0) {
          // Unreachable: the next socket starts it again; if this one is open, try again alone.
          if (this.opened && this.subs.get(sub.conversation.id) === sub) this.again(sub);
          return;
        }
        this.fail(sub, exc);
      },
    );
  }

  private subscribe(sub: Sub): void {
    const id = this.nextId++;
    sub.req = id;
    this.pending.set(id, sub);
    const { id: session, token } = sub.conversation;
    this.send({ op: "subscribe", id, session, token, after: sub.conversation.resumeAfter(), batch: true });
  }

  /** Subscribe one conversation again, after a backoff of its own. */
  private again(sub: Sub): void {
    sub.req = null;
    sub.subscribed = false;
    const attempt = ++sub.attempt;
    const delay = backoff(attempt, this.backoffMs, this.random);
    sub.conversation.report({ state: "reconnecting", attempt, retryAt: Date.now() + delay, detail: "" });
    sub.retry = setTimeout(() => {
      sub.retry = null;
      if (this.subs.get(sub.conversation.id) === sub) this.start(sub);
    }, delay);
  }

  private fail(sub: Sub, exc: unknown): void {
    sub.dead = true;
    const detail = exc instanceof Error ? exc.message : String(exc);
    sub.conversation.report({ state: "failed", retryAt: null, detail });
  }

  private onFrame(text: string): void {
    const frame = JSON.parse(text) as Item | Item[];
    if (!Array.isArray(frame)) return this.onItem(frame);
    // A batched frame: its items in order, each exactly as if it had come alone.
    for (const item of frame) this.onItem(item);
  }

  private onItem(frame: Item): void {
    if (typeof frame.reply === "number") return this.onReply(frame);
    const sub = typeof frame.session === "string" ? this.subs.get(frame.session) : undefined;
    if (!sub) return; // a conversation closed in this tab meanwhile
    if (typeof frame.control === "string") {
      if (frame.control !== "ended") return sub.conversation.onControl(frame.control, frame);
      sub.conversation.flush();
      if (frame.error && FATAL.includes(frame.error.status)) return this.fail(sub, new Error(frame.error.message));
      if (frame.reason === "session_deleted") return this.fail(sub, new Error("this conversation was deleted"));
      if (frame.reason === "token_rotated") {
        return this.fail(sub, new Error("this conversation's token was rotated: open it with the new one"));
      }
      return this.again(sub);
    }
    if (typeof frame.seq === "number") sub.conversation.onRecord(frame);
  }

  private onReply(reply: Reply): void {
    const sub = this.pending.get(reply.reply);
    this.pending.delete(reply.reply);
    if (!sub || sub.req !== reply.reply || this.subs.get(sub.conversation.id) !== sub) return;
    sub.req = null;
    const error = reply.error;
    if (!error || error.code === "already_subscribed") {
      sub.subscribed = true;
      sub.attempt = 0;
      const conversation = sub.conversation;
      // A `lagging` frame may come before the reply: it stands until `caught_up`.
      const state = conversation.status.state === "catching-up" ? "catching-up" : "live";
      conversation.report({ state, attempt: 0, retryAt: null, detail: "" });
    } else if (FATAL.includes(error.status)) {
      this.fail(sub, new ApiError(error.status, error.code, error.message));
    } else if (error.code === "cursor_ahead") {
      // The server has fewer records than this tab applied (it was reset): its state is the truth.
      sub.conversation.loaded = false;
      this.start(sub);
    } else {
      this.again(sub);
    }
  }
}
