// The HTTP API of a sessionwire server, with the session's token as bearer.
import type { SessionState } from "./fold.js";
import type * as P from "./generated/protocol.js";

/** The codes the server answers with (`{"error": {"code", "message"}}`); others may be added. */
export type ErrorCode =
  | "network" // no answer at all (status 0)
  | "malformed_json"
  | "invalid"
  | "invalid_event"
  | "body_too_large"
  | "unsupported_media_type"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "session_not_found"
  | "session_exists"
  | "turn_rejected"
  | "conflict"
  | "already_started"
  | "never_started"
  | "already_ended"
  | "after_end"
  | "owned_by_runtime"
  | "idempotency_key_in_use"
  | "idempotency_key_reused"
  | "cursor_expired"
  | "cursor_ahead"
  | "unavailable"
  | "no_runtime"
  | "server_error"
  | (string & {});

/** An error answer of the server, or (status 0, code "network") no answer at all. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }

  /** The token is wrong or rotated, or the session is gone: retrying cannot help. */
  get fatal(): boolean {
    return this.status === 401 || this.status === 403 || this.status === 404;
  }
}

export interface Created {
  id: string;
  token: string;
  title: string | null;
}

export interface Snapshot {
  seq: number;
  state: SessionState;
}

export interface TurnAccepted {
  turn: string;
  /** The seq the turn's records come after. */
  after: number;
  /** The turn policy that admitted it (`queue`: it waits for the running one). */
  policy?: string;
}

export interface JobAccepted {
  job: string;
  after: number;
}

export interface Renamed {
  session: string;
  title: string;
  /** The seq of its `session.renamed` record. */
  seq: number;
}

export type Decision = "approve" | "deny";

/** An event an external producer publishes: a record's fields without its envelope. */
export type EventInput = { type: P.AnyRecord["type"] | (string & {}) } & Record<string, unknown>;

export interface RequestOptions {
  /** Sent as `Idempotency-Key`: a retry with the same key gets the first answer back. */
  idempotencyKey?: string;
}

export interface ApiOptions {
  /** The server's URL ("" in a page the server served, the default). */
  baseUrl?: string;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/** A client of one server's HTTP API. Every method throws `ApiError`. */
export class Api {
  readonly base: string;
  private readonly fetcher: typeof fetch;

  constructor(options: ApiOptions | string = {}) {
    const given = typeof options === "string" ? { baseUrl: options } : options;
    this.base = (given.baseUrl ?? "").replace(/\/+$/, "");
    this.fetcher = given.fetch ?? ((input, init) => fetch(input, init));
  }

  /** Create a session; its token is the only key to it (a 32+ character `idempotencyKey` makes it retryable). */
  async createSession(title: string | null = null, options: RequestOptions & { id?: string } = {}): Promise<Created> {
    const body: Record<string, string> = {};
    if (title) body.title = title;
    if (options.id) body.id = options.id;
    const answer = await this.call<{ session: string; token: string }>("POST", "/v1/sessions", null, body, options);
    return { id: answer.session, token: answer.token, title };
  }

  /** The session's folded state and the seq it stands at. */
  async session(id: string, token: string): Promise<Snapshot> {
    const answer = await this.call<{ seq: number; state: SessionState }>("GET", path(id), token);
    return { seq: answer.seq ?? answer.state.seq, state: answer.state };
  }

  /** Start a turn with the user's text. */
  sendTurn(id: string, token: string, text: string, options: RequestOptions = {}): Promise<TurnAccepted> {
    return this.call("POST", path(id, "turns"), token, { text }, options);
  }

  /** Ask a running turn to stop. */
  cancelTurn(id: string, token: string, turn: string): Promise<unknown> {
    return this.call("POST", path(id, "turns", turn, "cancel"), token, {});
  }

  /** Start a background job. */
  startJob(id: string, token: string, title: string, prompt: string, options: RequestOptions = {}): Promise<JobAccepted> {
    return this.call("POST", path(id, "jobs"), token, { title, prompt }, options);
  }

  /** Ask a running job to stop. */
  cancelJob(id: string, token: string, job: string): Promise<unknown> {
    return this.call("POST", path(id, "jobs", job, "cancel"), token, {});
  }

  /** Approve or deny a pending approval. */
  resolveApproval(id: string, token: string, approval: string, decision: Decision, by?: string): Promise<unknown> {
    const body = by ? { decision, by } : { decision };
    return this.call("POST", path(id, "approvals", approval), token, body);
  }

  /** Append events as an external producer: their seqs, in order (one invalid event rejects them all). */
  async publish(id: string, token: string, events: EventInput[], options: RequestOptions = {}): Promise<number[]> {
    const answer = await this.call<{ seqs: number[] }>("POST", path(id, "records"), token, { events }, options);
    return answer.seqs;
  }

  /** Rename the session: records `session.renamed`, which every subscriber sees; the title as recorded. */
  rename(id: string, token: string, title: string, options: RequestOptions = {}): Promise<Renamed> {
    return this.call("POST", path(id, "title"), token, { title }, options);
  }

  /** Give the session a new token; the old one stops working, and its subscriptions end. */
  async rotateToken(id: string, token: string, options: RequestOptions = {}): Promise<string> {
    const answer = await this.call<{ token: string }>("POST", path(id, "token"), token, {}, options);
    return answer.token;
  }

  /** Delete the session and its records. */
  async deleteSession(id: string, token: string): Promise<void> {
    await this.call("DELETE", path(id), token);
  }

  /** The URL of the session's event stream (SSE), resuming after `after`. */
  eventsUrl(id: string, token: string, after: number): string {
    return `${this.base}${path(id, "events")}?after=${after}&token=${encodeURIComponent(token)}`;
  }

  /** The URL of the WebSocket, `/v1/ws` on the server's host. */
  socketUrl(): string {
    const url = new URL(`${this.base}/v1/ws`, globalThis.location?.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }

  /** Whether the server answers HTTP at all (with any status). */
  async reachable(): Promise<boolean> {
    try {
      const response = await this.fetcher(`${this.base}/healthz`, { cache: "no-store" });
      await response.body?.cancel();
      return true;
    } catch {
      return false;
    }
  }

  private async call<T>(
    method: string,
    route: string,
    token: string | null,
    body?: unknown,
    options: RequestOptions = {},
  ): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
    let response: Response;
    let text: string;
    try {
      response = await this.fetcher(this.base + route, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      text = await response.text();
    } catch (exc) {
      throw new ApiError(0, "network", `cannot reach the server: ${String(exc)}`);
    }
    let data: unknown = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const error = (data as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiError(
        response.status,
        error?.code ?? `http_${response.status}`,
        error?.message ?? `${method} ${route}: HTTP ${response.status}`,
      );
    }
    return data as T;
  }
}

/** `/v1/sessions/{id}/...` with each part escaped. */
function path(id: string, ...rest: string[]): string {
  return ["/v1/sessions", ...[id, ...rest].map(encodeURIComponent)].join("/");
}
