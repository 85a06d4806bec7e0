// Every open conversation of the tab over one WebSocket (`/v1/ws`).
//
// Each conversation is loaded once over HTTP, then subscribed with `{op: "subscribe", session,
// token, after, batch: true}` where `after` is the last seq applied to ITS store. With `batch` the
// server sends each batch it has ready as ONE frame, a JSON array of records and control frames;
// its items are applied in order exactly as single frames (a server without the option sends
// single frames, which are handled too). Items are routed by their `session` to that
// conversation only (and a LiveSession drops any record not its own). When the
// socket drops, every conversation applies what it has, and on the next socket each is
// subscribed again from its own last applied seq, with backoff between sockets. A subscription
// the server ends (`{"control": "ended"}`) is subscribed again alone.
import { ApiError } from "./api";
import type { LinkHooks, Transport } from "./link";
import { backoff, type ControlFrame, type LiveSession } from "./live";
import type { WireRecord } from "./fold";
import type { Api } from "./api";

/** The part of WebSocket this module uses (so tests can drive it). */
export interface SocketLike {
  onopen: ((event: Event) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface SocketOptions {
  api: Api;
  url: string;
  openSocket: (url: string) => SocketLike;
  backoffMs?: number;
  random?: () => number;
}

interface Sub {
  live: LiveSession;
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

export class SocketLink implements Transport {
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
    private readonly hooks: LinkHooks,
    private readonly options: SocketOptions,
  ) {
    this.backoffMs = options.backoffMs ?? 300;
    this.random = options.random ?? Math.random;
  }

  attach(live: LiveSession): void {
    const sub: Sub = { live, req: null, subscribed: false, loading: false, dead: false, attempt: 0, retry: null };
    this.subs.set(live.id, sub);
    live.report({ transport: "ws", state: this.attempt > 0 ? "reconnecting" : "connecting", attempt: this.attempt });
    if (this.socket === null && this.retry === null && !this.closed) this.connect();
    this.start(sub);
  }

  detach(live: LiveSession): void {
    const sub = this.subs.get(live.id);
    if (!sub || sub.live !== live) return;
    this.subs.delete(live.id);
    if (sub.retry !== null) clearTimeout(sub.retry);
    if (this.opened && (sub.subscribed || sub.req !== null)) {
      const id = this.nextId++;
      this.pending.set(id, null);
      this.send({ op: "unsubscribe", id, session: live.id });
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
    socket.onmessage = (event) => {
      if (this.socket === socket && typeof event.data === "string") this.onFrame(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket === socket) void this.lost(event.code, event.reason);
    };
  }

  /** Forget the socket and every subscription made over it (they died with it). */
  private drop(): boolean {
    const wasOpen = this.opened;
    if (this.socket) this.socket.onopen = this.socket.onmessage = this.socket.onclose = null;
    this.socket = null;
    this.opened = false;
    this.pending.clear();
    for (const sub of this.subs.values()) {
      sub.req = null;
      sub.subscribed = false;
      if (sub.retry !== null) clearTimeout(sub.retry);
      sub.retry = null;
      sub.live.flush(); // resume from the last *applied* seq: apply what arrived first
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
      if (!sub.dead) sub.live.report({ state: "reconnecting", attempt, retryAt, detail: "" });
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
    if (sub.live.loaded) {
      if (this.opened) this.subscribe(sub);
      return;
    }
    sub.loading = true;
    sub.live.load().then(
      () => {
        sub.loading = false;
        if (this.subs.get(sub.live.id) === sub) this.start(sub);
      },
      (exc: unknown) => {
        sub.loading = false;
        if (exc instanceof ApiError && exc.status === 0) {
          // Unreachable: the next socket starts it again; if this one is open, try again alone.
          if (this.opened && this.subs.get(sub.live.id) === sub) this.again(sub);
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
    const live = sub.live;
    this.send({ op: "subscribe", id, session: live.id, token: live.token, after: live.resumeAfter(), batch: true });
  }

  /** Subscribe one conversation again, after a backoff of its own. */
  private again(sub: Sub): void {
    sub.req = null;
    sub.subscribed = false;
    const attempt = ++sub.attempt;
    const delay = backoff(attempt, this.backoffMs, this.random);
    sub.live.report({ state: "reconnecting", attempt, retryAt: Date.now() + delay, detail: "" });
    sub.retry = setTimeout(() => {
      sub.retry = null;
      if (this.subs.get(sub.live.id) === sub) this.start(sub);
    }, delay);
  }

  private fail(sub: Sub, exc: unknown): void {
    sub.dead = true;
    sub.live.report({ state: "failed", retryAt: null, detail: exc instanceof Error ? exc.message : String(exc) });
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
      if (frame.control !== "ended") return sub.live.onControl(frame.control, frame);
      sub.live.flush();
      if (frame.error && FATAL.includes(frame.error.status)) return this.fail(sub, new Error(frame.error.message));
      if (frame.reason === "session_deleted") return this.fail(sub, new Error("this conversation was deleted"));
      if (frame.reason === "token_rotated") {
        return this.fail(sub, new Error("this conversation's token was rotated: open it with the new one"));
      }
      return this.again(sub);
    }
    if (typeof frame.seq === "number") sub.live.onRecord(frame);
  }

  private onReply(reply: Reply): void {
    const sub = this.pending.get(reply.reply);
    this.pending.delete(reply.reply);
    if (!sub || sub.req !== reply.reply || this.subs.get(sub.live.id) !== sub) return;
    sub.req = null;
    const error = reply.error;
    if (!error || error.code === "already_subscribed") {
      sub.subscribed = true;
      sub.attempt = 0;
      const live = sub.live;
      // A `lagging` frame may come before the reply: it stands until `caught_up`.
      const state = live.connection.state === "catching-up" ? "catching-up" : "live";
      live.report({ state, attempt: 0, retryAt: null, detail: "" });
    } else if (FATAL.includes(error.status)) {
      this.fail(sub, new ApiError(error.status, error.code, error.message));
    } else if (error.code === "cursor_ahead") {
      // The server has fewer records than this tab applied (it was reset): its state is the truth.
      sub.live.loaded = false;
      this.start(sub);
    } else {
      this.again(sub);
    }
  }
}
