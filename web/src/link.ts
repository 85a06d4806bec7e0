// The tab's subscriptions: every open conversation over ONE WebSocket (`/v1/ws`), or, when the
// server refuses it, one EventSource per conversation for the few streamed at once.
import { createStore, type SetStoreFunction } from "solid-js/store";
import { Api } from "./api";
import type { LiveSession } from "./live";
import { type SocketLike, SocketLink } from "./socket";
import { type SourceLike, SseLink } from "./sse";

/** What the tab's link is doing, shown in the sidebar. */
export interface LinkStatus {
  transport: "ws" | "sse";
  state: "connecting" | "open" | "reconnecting" | "closed";
  /** Consecutive failed attempts (of the WebSocket). */
  attempt: number;
  /** Conversations subscribed (or waiting to be) through this link. */
  sessions: number;
  /** Why the WebSocket is not used, after a fallback. */
  detail: string;
}

/** What a transport tells the link. */
export interface LinkHooks {
  status(patch: Partial<LinkStatus>): void;
  /** The server refuses the WebSocket (not a lost connection): fall back to EventSource. */
  refused(reason: string): void;
}

/** One way to carry the records of the tab's open conversations. */
export interface Transport {
  readonly kind: "ws" | "sse";
  /** Load the conversation (if not yet) and keep it subscribed until `detach`. */
  attach(live: LiveSession): void;
  detach(live: LiveSession): void;
  /** The conversation is the one shown now. */
  focus(live: LiveSession): void;
  close(): void;
}

export interface LinkOptions {
  api?: Api;
  /** Opens the WebSocket (default `new WebSocket(url)`); null: EventSource only. */
  openSocket?: ((url: string) => SocketLike) | null;
  /** Opens an EventSource (default `new EventSource(url)`). */
  openSource?: (url: string) => SourceLike;
  socketUrl?: string;
  /** Backoff base in ms. */
  backoffMs?: number;
  random?: () => number;
}

export class Link {
  readonly status: LinkStatus;
  private readonly setStatus: SetStoreFunction<LinkStatus>;
  private readonly lives = new Map<string, LiveSession>();
  private readonly options: LinkOptions & { api: Api };
  private transport: Transport;
  private focused: LiveSession | null = null;

  constructor(options: LinkOptions = {}) {
    const openSocket =
      options.openSocket === undefined
        ? typeof WebSocket === "function"
          ? (url: string) => new WebSocket(url) as unknown as SocketLike
          : null
        : options.openSocket;
    this.options = { ...options, api: options.api ?? new Api() };
    [this.status, this.setStatus] = createStore<LinkStatus>({
      transport: openSocket ? "ws" : "sse",
      state: "connecting",
      attempt: 0,
      sessions: 0,
      detail: openSocket ? "" : "this browser has no WebSocket",
    });
    const hooks: LinkHooks = {
      status: (patch) => this.setStatus(patch),
      refused: (reason) => this.fallBack(reason),
    };
    this.transport = openSocket
      ? new SocketLink(hooks, {
          ...this.options,
          openSocket,
          url: options.socketUrl ?? this.options.api.socketUrl(),
        })
      : this.sse();
  }

  /** The transport in use. */
  get kind(): "ws" | "sse" {
    return this.transport.kind;
  }

  /** Keep this conversation subscribed while it is open in the tab. */
  attach(live: LiveSession): void {
    if (this.lives.get(live.id) === live) return;
    const old = this.lives.get(live.id);
    if (old) this.detach(old);
    this.lives.set(live.id, live);
    this.setStatus("sessions", this.lives.size);
    this.transport.attach(live);
  }

  /** Stop this conversation's subscription. */
  detach(live: LiveSession): void {
    if (this.lives.get(live.id) !== live) return;
    this.lives.delete(live.id);
    if (this.focused === live) this.focused = null;
    this.setStatus("sessions", this.lives.size);
    this.transport.detach(live);
  }

  /** The conversation shown now (an EventSource fallback streams the recently shown ones only). */
  focus(live: LiveSession): void {
    this.focused = live;
    this.transport.focus(live);
  }

  close(): void {
    this.transport.close();
    this.setStatus({ state: "closed" });
  }

  private sse(): SseLink {
    return new SseLink({ status: (patch) => this.setStatus(patch), refused: () => {} }, this.options);
  }

  private fallBack(reason: string): void {
    if (this.transport.kind === "sse") return;
    this.transport.close();
    this.setStatus({ transport: "sse", attempt: 0, detail: reason });
    this.transport = this.sse();
    for (const live of this.lives.values()) this.transport.attach(live);
    if (this.focused) this.transport.focus(this.focused);
  }
}
