// Every open conversation over ONE WebSocket (`/v1/ws`), or, when the server refuses it (or
// there is no WebSocket), one event stream per conversation.
import { Api } from "./api.js";
import { Conversation, type ConversationOptions } from "./conversation.js";
import { type Host, type HostFactory, plainHost } from "./host.js";
import { type SocketLike, SocketTransport } from "./socket.js";
import { type SourceLike, SseTransport } from "./sse.js";

/** What the connection is doing. */
export interface ConnectionStatus {
  transport: "ws" | "sse";
  state: "connecting" | "open" | "reconnecting" | "closed";
  /** Consecutive failed attempts (of the WebSocket). */
  attempt: number;
  /** Conversations subscribed (or waiting to be) through it. */
  sessions: number;
  /** Why the WebSocket is not used, after a fallback. */
  detail: string;
}

/** What a transport tells the connection. */
export interface TransportHooks {
  status(patch: Partial<ConnectionStatus>): void;
  /** The server refuses the WebSocket (not a lost connection): fall back to streams. */
  refused(reason: string): void;
}

/** One way to carry the records of the open conversations. */
export interface Transport {
  readonly kind: "ws" | "sse";
  /** Load the conversation (if not yet) and keep it subscribed until `detach`. */
  attach(conversation: Conversation): void;
  detach(conversation: Conversation): void;
  /** The conversation is the one shown now. */
  focus(conversation: Conversation): void;
  close(): void;
}

export interface ConnectionOptions {
  api?: Api;
  /** The server's URL, when no `api` is given ("" in a page the server served). */
  baseUrl?: string;
  /**
   * Opens the WebSocket (default: `new WebSocket(url)` where there is a global WebSocket).
   * null: streams only. In Node 20, pass one (`(url) => new WebSocket(url)` of the `ws` package).
   */
  openSocket?: ((url: string) => SocketLike) | null;
  /** Opens an event stream (default: the global EventSource, else a fetch-based reader). */
  openSource?: (url: string) => SourceLike;
  socketUrl?: string;
  /** Conversations streamed at once without the WebSocket (default: 3 in a browser, else all). */
  maxStreams?: number;
  /** Backoff base in ms. */
  backoffMs?: number;
  random?: () => number;
  /** Where its status lives (and that of the conversations it opens). */
  host?: HostFactory;
}

export class Connection {
  readonly api: Api;
  private readonly statusHost: Host<ConnectionStatus>;
  private readonly listeners = new Set<(status: ConnectionStatus) => void>();
  private readonly conversations = new Map<string, Conversation>();
  /** For each conversation attached: stops hearing that it closes. */
  private readonly closing = new Map<Conversation, () => void>();
  private readonly options: ConnectionOptions & { api: Api };
  private transport: Transport;
  private focused: Conversation | null = null;

  constructor(options: ConnectionOptions = {}) {
    const openSocket =
      options.openSocket === undefined
        ? typeof WebSocket === "function"
          ? (url: string) => new WebSocket(url) as unknown as SocketLike
          : null
        : options.openSocket;
    this.api = options.api ?? new Api({ baseUrl: options.baseUrl });
    this.options = { ...options, api: this.api };
    this.statusHost = (options.host ?? plainHost)<ConnectionStatus>({
      transport: openSocket ? "ws" : "sse",
      state: "connecting",
      attempt: 0,
      sessions: 0,
      detail: openSocket ? "" : "no WebSocket here",
    });
    this.transport = openSocket
      ? new SocketTransport(this.hooks(), {
          ...this.options,
          openSocket,
          url: options.socketUrl ?? this.api.socketUrl(),
        })
      : this.streams();
  }

  /** What the connection is doing (reactive under an adapter). */
  get status(): ConnectionStatus {
    return this.statusHost.value;
  }

  /** The transport in use. */
  get kind(): "ws" | "sse" {
    return this.transport.kind;
  }

  /** Hear every change of the connection's status. */
  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Open a conversation: load it, subscribe it and keep it subscribed until `conversation.close()` or `detach`. */
  open(id: string, token: string, options: ConversationOptions = {}): Conversation {
    const conversation = new Conversation(id, token, { api: this.api, host: this.options.host, ...options });
    this.attach(conversation);
    this.focus(conversation);
    return conversation;
  }

  /** Keep this conversation subscribed until it closes or is detached (replacing another of the same id). */
  attach(conversation: Conversation): void {
    if (conversation.closed || this.conversations.get(conversation.id) === conversation) return;
    const old = this.conversations.get(conversation.id);
    if (old) this.detach(old);
    this.conversations.set(conversation.id, conversation);
    this.closing.set(conversation, conversation.onClose(() => this.detach(conversation)));
    this.setStatus({ sessions: this.conversations.size });
    this.transport.attach(conversation);
  }

  /** Stop this conversation's subscription. */
  detach(conversation: Conversation): void {
    if (this.conversations.get(conversation.id) !== conversation) return;
    this.conversations.delete(conversation.id);
    this.closing.get(conversation)?.();
    this.closing.delete(conversation);
    if (this.focused === conversation) this.focused = null;
    this.setStatus({ sessions: this.conversations.size });
    this.transport.detach(conversation);
  }

  /** The conversation shown now (without the WebSocket, a browser streams the recently shown ones only). */
  focus(conversation: Conversation): void {
    this.focused = conversation;
    this.transport.focus(conversation);
  }

  /** Close the connection; its conversations keep their state but hear nothing more. */
  close(): void {
    this.transport.close();
    this.setStatus({ state: "closed" });
  }

  private setStatus(patch: Partial<ConnectionStatus>): void {
    this.statusHost.update((status) => Object.assign(status, patch));
    for (const listener of [...this.listeners]) listener(this.status);
  }

  private hooks(): TransportHooks {
    return { status: (patch) => this.setStatus(patch), refused: (reason) => this.fallBack(reason) };
  }

  private streams(): SseTransport {
    return new SseTransport({ status: (patch) => this.setStatus(patch), refused: () => {} }, this.options);
  }

  private fallBack(reason: string): void {
    if (this.transport.kind === "sse") return;
    this.transport.close();
    this.setStatus({ transport: "sse", attempt: 0, detail: reason });
    this.transport = this.streams();
    for (const conversation of this.conversations.values()) this.transport.attach(conversation);
    if (this.focused) this.transport.focus(this.focused);
  }
}
