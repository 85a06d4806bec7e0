// The fold: records -> session state, the same function as src/sessionwire/state.py.
//
// `apply` mutates the state in place (so a reactive store can run it as one update and
// change only the paths it touches) and keeps every object it can: a part that a
// `message.completed` restates is updated field by field, not replaced, so whatever
// shows it keeps its identity. It reports what it touched (a turn, a message part, a job,
// an approval, the session's own fields) to an optional `touch` callback, which is how a
// store tells its subscribers what changed. The resulting state is equal to the Python
// fold's for every record sequence; tests/vectors/*.json prove it.
import type * as P from "./generated/protocol.js";
import type * as S from "./generated/state.js";
import { validEvent } from "./validate.js";

/** A generated type with every defaulted field present (the form `to_dict()` gives). */
export type Full<T> = T extends (infer U)[]
  ? Full<U>[]
  : T extends object
    ? { -readonly [K in keyof T]-?: Full<T[K]> }
    : T;

export type SessionState = Full<S.SessionState>;
export type TurnState = Full<S.TurnState>;
export type MessageState = Full<S.MessageState>;
export type PartState = MessageState["parts"][number];
export type TextPartState = Full<S.TextPart>;
export type ReasoningPartState = Full<S.ReasoningPart>;
export type ToolPartState = Omit<Full<S.ToolPart>, "result"> & { result: unknown };
export type JobState = Full<S.JobState>;
export type ApprovalState = Full<S.ApprovalState>;
export type RunStatus = TurnState["status"];

/** A record as it comes off the wire: one of the known types, or one this version does not know. */
export type WireRecord = P.AnyRecord | UnknownRecord;
export interface UnknownRecord {
  v: number;
  session: string;
  seq: number;
  ts: number;
  type: string;
  [field: string]: unknown;
}

/** What a record changed, as `apply` reports it. */
export type Touched =
  /** The session's own fields: title, creation time, status line, errors. */
  | { kind: "session" }
  | { kind: "turn"; id: string }
  /** A message; `part` is the index of the one part changed, or null for the message as a whole. */
  | { kind: "message"; id: string; part: number | null }
  | { kind: "job"; id: string }
  | { kind: "approval"; id: string };

export type Touch = (what: Touched) => void;

const ignore: Touch = () => {};

/** The state before any record. */
export function emptyState(): SessionState {
  return {
    seq: 0,
    session: null,
    title: null,
    created_at: null,
    updated_at: null,
    turns: {},
    messages: {},
    message_order: [],
    jobs: {},
    approvals: {},
    errors: [],
    status: null,
  };
}

/** Fold many records into a fresh state (or into `state`, in place). */
export function foldRecords(records: Iterable<WireRecord>, state: SessionState = emptyState()): SessionState {
  for (const record of records) apply(state, record, ignore);
  return state;
}

/**
 * Fold one record into `state` in place; records at or below `state.seq` are ignored.
 * `touch` hears every turn, message (part), job and approval the record changed.
 *
 * @throws Error if the record belongs to another session than the state.
 */
export function apply(state: SessionState, record: WireRecord, touch: Touch = ignore): SessionState {
  if (state.session !== null && record.session !== state.session) {
    throw new Error(`record ${record.session}#${record.seq} does not belong to session ${state.session}`);
  }
  if (record.seq <= state.seq) return state;
  state.seq = record.seq;
  state.session = record.session;
  state.updated_at = record.ts;
  // A known type whose fields do not validate is opaque, as in Python: it only advances seq.
  if (!validEvent(record as UnknownRecord)) return state;
  const r = record as P.AnyRecord;
  switch (r.type) {
    case "session.created":
      state.title = r.title ?? null;
      state.created_at = r.ts;
      break;
    case "session.renamed":
      // A name the server gave from the first message never replaces one a person gave.
      if (!r.auto || state.title === null) state.title = r.title;
      break;
    case "turn.started": {
      const turn = turnOf(state, r.turn);
      if (turn.status === "running") turn.owner = r.owner ?? null; // an ended turn never restarts
      break;
    }
    case "turn.completed": {
      const turn = endTurn(state, r.turn, "completed");
      if (!turn) break;
      turn.model = r.model ?? null;
      turn.usage = r.usage
        ? { input_tokens: r.usage.input_tokens ?? 0, output_tokens: r.usage.output_tokens ?? 0 }
        : null;
      ended(state, turn.messages, "completed", turn.id, null, touch);
      break;
    }
    case "turn.failed": {
      const turn = endTurn(state, r.turn, "failed");
      if (!turn) break;
      turn.error = r.error;
      turn.code = r.code ?? null;
      ended(state, turn.messages, "failed", turn.id, null, touch);
      break;
    }
    case "turn.cancelled":
    case "turn.interrupted": {
      const status = r.type === "turn.cancelled" ? "cancelled" : "interrupted";
      const turn = endTurn(state, r.turn, status);
      if (!turn) break;
      turn.reason = r.reason ?? null;
      ended(state, turn.messages, status, turn.id, null, touch);
      break;
    }
    case "message.started":
      messageOf(state, r.message, r.turn, r.job, touch).role = r.role;
      break;
    case "message.delta": {
      const message = messageOf(state, r.message, r.turn, r.job, touch);
      if (message.status !== "streaming") break; // the final body is authoritative
      const kind = r.kind ?? "text";
      pad(message, r.part);
      let part = message.parts[r.part];
      if (part.kind !== kind) part = message.parts[r.part] = { kind, text: "" };
      (part as TextPartState | ReasoningPartState).text += r.text;
      break;
    }
    case "message.completed": {
      const message = messageOf(state, r.message, r.turn, r.job, touch);
      message.role = r.role;
      message.status = "completed";
      restateParts(message, r.parts);
      break;
    }
    case "tool.started": {
      const part = streamingTool(state, r, touch);
      if (part) part.name = r.name;
      break;
    }
    case "tool.args.delta": {
      const part = streamingTool(state, r, touch);
      if (part && part.status === "streaming") part.args += r.text;
      break;
    }
    case "tool.called": {
      const part = toolOf(state, r, touch);
      if (part) {
        part.name = r.name;
        part.args = r.args;
        part.status = "called";
      }
      break;
    }
    case "tool.result": {
      const part = toolOf(state, r, touch);
      if (part) {
        part.status = r.status ?? "completed";
        part.result = r.result ?? null;
        part.error = r.error ?? null;
      }
      break;
    }
    case "job.started": {
      const job = jobOf(state, r.job);
      if (job.status === "running") {
        // an ended job never restarts
        job.title = r.title;
        job.turn = r.turn ?? null;
        job.owner = r.owner ?? null;
      }
      break;
    }
    case "job.progress": {
      const job = jobOf(state, r.job);
      if (job.status === "running") job.progress = { done: r.done, total: r.total ?? null, note: r.note ?? null };
      break;
    }
    case "job.completed": {
      const job = endJob(state, r.job, "completed");
      if (!job) break;
      job.summary = r.summary ?? null;
      ended(state, job.messages, "completed", null, job.id, touch);
      break;
    }
    case "job.failed": {
      const job = endJob(state, r.job, "failed");
      if (!job) break;
      job.error = r.error;
      job.code = r.code ?? null;
      ended(state, job.messages, "failed", null, job.id, touch);
      break;
    }
    case "job.cancelled":
    case "job.interrupted": {
      const status = r.type === "job.cancelled" ? "cancelled" : "interrupted";
      const job = endJob(state, r.job, status);
      if (!job) break;
      job.reason = r.reason ?? null;
      ended(state, job.messages, status, null, job.id, touch);
      break;
    }
    case "approval.requested": {
      if (!state.approvals[r.approval]) {
        state.approvals[r.approval] = {
          id: r.approval,
          action: "",
          call: null,
          turn: null,
          job: null,
          expires_at: null,
          status: "pending",
          by: null,
        };
      }
      // A repeated request updates the details but never reopens a resolved approval.
      const approval = state.approvals[r.approval];
      approval.action = r.action;
      approval.call = r.call ?? null;
      approval.expires_at = r.expires_at ?? null;
      approval.turn = r.turn ?? null;
      approval.job = r.job ?? null;
      break;
    }
    case "approval.resolved": {
      const approval = state.approvals[r.approval];
      if (!approval) {
        state.approvals[r.approval] = {
          id: r.approval,
          action: "",
          call: null,
          turn: r.turn ?? null,
          job: r.job ?? null,
          expires_at: null,
          status: r.decision,
          by: r.by ?? null,
        };
      } else if (approval.status === "pending") {
        approval.status = r.decision;
        approval.by = r.by ?? null;
      } // else: the first resolution wins
      break;
    }
    case "status":
      state.status = { text: r.text, turn: r.turn ?? null, job: r.job ?? null };
      break;
    case "error":
      state.errors.push({ seq: r.seq, error: r.error, code: r.code ?? null, turn: r.turn ?? null, job: r.job ?? null });
      break;
    default: {
      // A type this version does not know is passed over; tsc fails here if a known one is missing.
      const unknown: never = r;
      void unknown;
    }
  }
  touch(subjectOf(r));
  return state;
}

/** What a record of a known type is about (what it touched, beyond what `ended` and `messageOf` report). */
function subjectOf(r: P.AnyRecord): Touched {
  switch (r.type) {
    case "message.delta":
    case "tool.started":
    case "tool.args.delta":
      return { kind: "message", id: r.message, part: r.part };
    case "message.started":
    case "message.completed":
    case "tool.called": // found by its call id, maybe at another index than the record says
    case "tool.result":
      return { kind: "message", id: r.message, part: null };
    case "approval.requested":
    case "approval.resolved":
      return { kind: "approval", id: r.approval };
    default:
      if ("job" in r && typeof r.job === "string" && r.type.startsWith("job.")) return { kind: "job", id: r.job };
      if ("turn" in r && typeof r.turn === "string" && r.type.startsWith("turn.")) return { kind: "turn", id: r.turn };
      return { kind: "session" };
  }
}

type Ending = Exclude<RunStatus, "running">;

// Each `...Of` helper reads the object back through `state`, so under a Solid `produce` the
// caller always mutates the store's proxy, never a raw object.

function turnOf(state: SessionState, id: string): TurnState {
  if (!state.turns[id]) {
    state.turns[id] = {
      id,
      status: "running",
      owner: null,
      messages: [],
      model: null,
      usage: null,
      error: null,
      code: null,
      reason: null,
    };
  }
  return state.turns[id];
}

function jobOf(state: SessionState, id: string): JobState {
  if (!state.jobs[id]) {
    state.jobs[id] = {
      id,
      title: "",
      status: "running",
      turn: null,
      owner: null,
      progress: null,
      messages: [],
      summary: null,
      error: null,
      code: null,
      reason: null,
    };
  }
  return state.jobs[id];
}

// The first terminal event wins: a later one returns null and changes nothing.
function endTurn(state: SessionState, id: string, status: Ending): TurnState | null {
  const turn = turnOf(state, id);
  if (turn.status !== "running") return null;
  turn.status = status;
  return turn;
}

function endJob(state: SessionState, id: string, status: Ending): JobState | null {
  const job = jobOf(state, id);
  if (job.status !== "running") return null;
  job.status = status;
  return job;
}

// A terminal closes every message of its turn or job still streaming, and clears its status line.
function ended(
  state: SessionState,
  ids: string[],
  status: Ending,
  turn: string | null,
  job: string | null,
  touch: Touch,
): void {
  for (const id of ids) {
    const message = state.messages[id];
    if (message.status === "streaming") {
      message.status = status;
      touch({ kind: "message", id, part: null });
    }
  }
  const line = state.status;
  if (line !== null && (line.job !== null ? line.job === job : line.turn === turn)) {
    state.status = null;
    touch({ kind: "session" });
  }
}

function messageOf(
  state: SessionState,
  id: string,
  turn: string | null | undefined,
  job: string | null | undefined,
  touch: Touch,
): MessageState {
  if (!state.messages[id]) {
    const t = turn ?? null;
    const j = job ?? null;
    state.messages[id] = { id, role: "assistant", turn: t, job: j, status: "streaming", parts: [] };
    state.message_order.push(id);
    // A message belongs to its job if it has one, else to its turn; one that first
    // appears after its owner ended starts closed, so nothing is left streaming.
    const owner = j !== null ? jobOf(state, j) : t !== null ? turnOf(state, t) : null;
    if (owner) {
      owner.messages.push(id);
      touch(j !== null ? { kind: "job", id: j } : { kind: "turn", id: t! });
      if (owner.status !== "running") state.messages[id].status = owner.status;
    }
  }
  return state.messages[id];
}

function pad(message: MessageState, index: number): void {
  while (message.parts.length <= index) message.parts.push({ kind: "text", text: "" });
}

type ToolScoped = { message: string; part: number; call: string; turn?: string | null; job?: string | null };

function newTool(message: MessageState, index: number, call: string): ToolPartState {
  const part: ToolPartState = {
    kind: "tool",
    call,
    name: "",
    args: "",
    status: "streaming",
    result: null,
    error: null,
  };
  message.parts[index] = part as PartState;
  return message.parts[index] as ToolPartState;
}

function isTool(part: PartState | undefined, call: string): boolean {
  return part !== undefined && part.kind === "tool" && part.call === call;
}

// tool.started and tool.args.delta are stream fragments: only a streaming message takes them.
function streamingTool(state: SessionState, r: ToolScoped, touch: Touch): ToolPartState | null {
  const message = messageOf(state, r.message, r.turn, r.job, touch);
  if (message.status !== "streaming") return null;
  pad(message, r.part);
  if (isTool(message.parts[r.part], r.call)) return message.parts[r.part] as ToolPartState;
  return newTool(message, r.part, r.call);
}

// tool.called and tool.result are facts about a call: they update its part, found by call id,
// also once the message is final (a tool often finishes after its message).
function toolOf(state: SessionState, r: ToolScoped, touch: Touch): ToolPartState | null {
  const message = messageOf(state, r.message, r.turn, r.job, touch);
  const parts = message.parts;
  if (r.part < parts.length && isTool(parts[r.part], r.call)) return parts[r.part] as ToolPartState;
  const found = parts.find((part) => isTool(part, r.call));
  if (found) return found as ToolPartState;
  if (message.status !== "streaming") return null;
  pad(message, r.part);
  return newTool(message, r.part, r.call);
}

function partState(part: P.TextPart | P.ReasoningPart | P.ToolPart): PartState {
  if (part.kind === "tool") {
    const tool: ToolPartState = {
      kind: "tool",
      call: part.call,
      name: part.name,
      args: part.args ?? "",
      status: part.status ?? "streaming",
      result: part.result ?? null,
      error: part.error ?? null,
    };
    return tool as PartState;
  }
  return { kind: part.kind, text: part.text ?? "" };
}

// `message.completed` restates every part: equal to replacing the list, but a part of the
// same kind (and the same call) at the same index is updated in place, so it keeps its identity.
function restateParts(message: MessageState, parts: (P.TextPart | P.ReasoningPart | P.ToolPart)[]): void {
  const current = message.parts;
  parts.forEach((given, i) => {
    const next = partState(given);
    const old = current[i];
    const same = old && old.kind === next.kind && (old.kind !== "tool" || old.call === (next as ToolPartState).call);
    if (same) {
      for (const [key, value] of Object.entries(next)) {
        if ((old as Record<string, unknown>)[key] !== value) (old as Record<string, unknown>)[key] = value;
      }
    } else {
      current[i] = next;
    }
  });
  if (current.length > parts.length) current.splice(parts.length);
}
