// The HTTP commands of the sessionwire server (issue 4), with the session token as bearer.
import type { SessionState } from "./fold";

/** An error answer of the server: `{"error": {"code", "message"}}`, or a network failure. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
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

export type Decision = "approve" | "deny";

/** A client of one server; `base` is "" for the server that served the page. */
export class Api {
  constructor(readonly base = "") {}

  /** Create a session; its token is the only key to it. */
  async createSession(title: string | null): Promise<Created> {
    const body: Record<string, string> = {};
    if (title) body.title = title;
    const answer = await this.call<{ session: unknown; token: string }>("POST", "/v1/sessions", null, body);
    const session = answer.session as string | { id: string; title?: string | null };
    if (typeof session === "string") return { id: session, token: answer.token, title };
    return { id: session.id, token: answer.token, title: session.title ?? title };
  }

  /** The session's folded state and the seq it stands at. */
  async session(id: string, token: string): Promise<Snapshot> {
    const answer = await this.call<{ seq: number; state: SessionState }>("GET", `/v1/sessions/${enc(id)}`, token);
    return { seq: answer.seq ?? answer.state.seq, state: answer.state };
  }

  /** Start a turn with the user's text. */
  sendTurn(id: string, token: string, text: string): Promise<{ turn: string; after: number; policy?: string }> {
    return this.call("POST", `/v1/sessions/${enc(id)}/turns`, token, { text });
  }

  /** Ask a running turn to stop. */
  cancelTurn(id: string, token: string, turn: string): Promise<unknown> {
    return this.call("POST", `/v1/sessions/${enc(id)}/turns/${enc(turn)}/cancel`, token, {});
  }

  /** Start a background job. */
  startJob(id: string, token: string, title: string, prompt: string): Promise<{ job: string; after: number }> {
    return this.call("POST", `/v1/sessions/${enc(id)}/jobs`, token, { title, prompt });
  }

  /** Ask a running job to stop. */
  cancelJob(id: string, token: string, job: string): Promise<unknown> {
    return this.call("POST", `/v1/sessions/${enc(id)}/jobs/${enc(job)}/cancel`, token, {});
  }

  /** Approve or deny a pending approval. */
  resolveApproval(id: string, token: string, approval: string, decision: Decision, by: string): Promise<unknown> {
    return this.call("POST", `/v1/sessions/${enc(id)}/approvals/${enc(approval)}`, token, { decision, by });
  }

  /** The URL of the session's event stream (SSE), resuming after `after`. */
  eventsUrl(id: string, token: string, after: number): string {
    return `${this.base}/v1/sessions/${enc(id)}/events?after=${after}&token=${enc(token)}`;
  }

  /** The URL of the tab's WebSocket, `/v1/ws` on the server's host. */
  socketUrl(): string {
    const url = new URL(`${this.base}/v1/ws`, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }

  /** Whether the server answers HTTP at all (with any status). */
  async reachable(): Promise<boolean> {
    try {
      await fetch(`${this.base}/healthz`, { cache: "no-store" });
      return true;
    } catch {
      return false;
    }
  }

  private async call<T>(method: string, path: string, token: string | null, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (exc) {
      throw new ApiError(0, "network", `cannot reach the server: ${String(exc)}`);
    }
    const text = await response.text();
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
        error?.message ?? `${method} ${path}: HTTP ${response.status}`,
      );
    }
    return data as T;
  }
}

function enc(part: string): string {
  return encodeURIComponent(part);
}
