import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { apply, emptyState, foldRecords, type SessionState, type WireRecord } from "../src/fold.js";

const root = resolve(__dirname, "../../..");
const vectorsDir = resolve(root, "tests/vectors");
const python = process.env.SESSIONWIRE_PYTHON ?? resolve(root, ".venv/bin/python");

interface Vector {
  name: string;
  description?: string;
  records: WireRecord[];
  expected: SessionState;
}

function vectors(): [string, Vector][] {
  if (!existsSync(vectorsDir)) return [];
  return readdirSync(vectorsDir)
    .filter((name) => name.endsWith(".json"))
    .sort()
    .map((name) => [name, JSON.parse(readFileSync(resolve(vectorsDir, name), "utf8")) as Vector]);
}

const shared = vectors();

describe("shared vectors (tests/vectors/*.json)", () => {
  it("exist", () => {
    expect(shared.length, `no vectors in ${vectorsDir}`).toBeGreaterThanOrEqual(5);
  });
  it.each(shared)("%s folds to the expected state", (_name, vector) => {
    expect(foldRecords(structuredClone(vector.records))).toEqual(vector.expected);
  });
  it.each(shared)("%s folds the same one record at a time with replays", (_name, vector) => {
    const state = emptyState();
    for (const record of vector.records) {
      apply(state, structuredClone(record));
      apply(state, structuredClone(record)); // a duplicate is ignored
    }
    expect(state).toEqual(vector.expected);
  });
});

// ------------------------------------------------------------------ hand-folded cases

let clock = 1_700_000_000_000;
function recorder(session = "s1") {
  let seq = 0;
  return (type: string, fields: Record<string, unknown> = {}): WireRecord =>
    ({ v: 1, session, seq: ++seq, ts: ++clock, type, ...fields }) as WireRecord;
}

describe("fold by hand", () => {
  it("builds a turn from deltas and lets the final restate it", () => {
    const r = recorder();
    const records = [
      r("session.created", { title: "hello" }),
      r("turn.started", { turn: "t1" }),
      r("message.started", { message: "m1", role: "assistant", turn: "t1" }),
      r("message.delta", { message: "m1", part: 0, kind: "reasoning", text: "hm" }),
      r("message.delta", { message: "m1", part: 1, text: "Hel" }),
      r("message.delta", { message: "m1", part: 1, text: "lo" }),
      r("message.completed", {
        message: "m1",
        role: "assistant",
        turn: "t1",
        parts: [
          { kind: "reasoning", text: "hmm" },
          { kind: "text", text: "Hello!" },
        ],
      }),
      r("message.delta", { message: "m1", part: 1, text: " late" }),
      r("turn.completed", { turn: "t1", model: "scripted", usage: { input_tokens: 3, output_tokens: 2 } }),
    ];
    const state = foldRecords(records);
    expect(state.seq).toBe(9);
    expect(state.title).toBe("hello");
    expect(state.session).toBe("s1");
    expect(state.message_order).toEqual(["m1"]);
    expect(state.messages.m1).toEqual({
      id: "m1",
      role: "assistant",
      turn: "t1",
      job: null,
      status: "completed",
      parts: [
        { kind: "reasoning", text: "hmm" },
        { kind: "text", text: "Hello!" },
      ],
    });
    expect(state.turns.t1).toEqual({
      id: "t1",
      status: "completed",
      owner: null,
      messages: ["m1"],
      model: "scripted",
      usage: { input_tokens: 3, output_tokens: 2 },
      error: null,
      code: null,
      reason: null,
    });
  });

  it("keeps part objects when the final restates them", () => {
    const r = recorder();
    const state = foldRecords([
      r("message.delta", { message: "m", part: 0, text: "a" }),
      r("tool.started", { message: "m", part: 1, call: "c", name: "grep" }),
    ]);
    const [text, tool] = state.messages.m.parts;
    apply(
      state,
      r("message.completed", {
        message: "m",
        role: "assistant",
        parts: [
          { kind: "text", text: "ab" },
          { kind: "tool", call: "c", name: "grep", args: "{}", status: "completed", result: [1] },
        ],
      }),
    );
    expect(state.messages.m.parts[0]).toBe(text);
    expect(state.messages.m.parts[1]).toBe(tool);
    expect(tool).toEqual({
      kind: "tool",
      call: "c",
      name: "grep",
      args: "{}",
      status: "completed",
      result: [1],
      error: null,
    });
  });

  it("streams tool calls, jobs, approvals, status and errors", () => {
    const r = recorder();
    const state = foldRecords([
      r("turn.started", { turn: "t1", owner: "o" }),
      r("tool.started", { message: "m1", part: 0, call: "c1", name: "search", turn: "t1" }),
      r("tool.args.delta", { message: "m1", part: 0, call: "c1", text: '{"q":', turn: "t1" }),
      r("tool.args.delta", { message: "m1", part: 0, call: "c1", text: '"x"}', turn: "t1" }),
      r("approval.requested", { approval: "a1", action: "run search", call: "c1", turn: "t1", expires_at: 5 }),
      r("approval.resolved", { approval: "a1", decision: "denied", by: "ann" }),
      r("approval.resolved", { approval: "a1", decision: "approved", by: "bob" }),
      r("tool.result", { message: "m1", part: 0, call: "c1", status: "denied", error: "denied by ann", turn: "t1" }),
      r("job.started", { job: "j1", title: "count", turn: "t1" }),
      r("job.progress", { job: "j1", done: 1, total: 3 }),
      r("message.delta", { message: "m2", part: 0, text: "w1", job: "j1" }),
      r("status", { text: "working", job: "j1" }),
      r("error", { error: "oops", code: "E1", turn: "t1" }),
      r("turn.cancelled", { turn: "t1", reason: "stop" }),
      r("some.future.type", { whatever: 1 }),
      r("job.failed", { job: "j1", error: "boom" }),
      r("approval.resolved", { approval: "a2", decision: "expired", turn: "t1" }),
    ]);
    expect(state.seq).toBe(17);
    expect(state.turns.t1.status).toBe("cancelled");
    expect(state.turns.t1.reason).toBe("stop");
    expect(state.turns.t1.messages).toEqual(["m1"]);
    expect(state.messages.m1.status).toBe("cancelled");
    expect(state.messages.m1.parts).toEqual([
      {
        kind: "tool",
        call: "c1",
        name: "search",
        args: '{"q":"x"}',
        status: "denied",
        result: null,
        error: "denied by ann",
      },
    ]);
    expect(state.approvals.a1).toEqual({
      id: "a1",
      action: "run search",
      call: "c1",
      turn: "t1",
      job: null,
      expires_at: 5,
      status: "denied",
      by: "ann",
    });
    expect(state.approvals.a2).toEqual({
      id: "a2",
      action: "",
      call: null,
      turn: "t1",
      job: null,
      expires_at: null,
      status: "expired",
      by: null,
    });
    expect(state.jobs.j1).toEqual({
      id: "j1",
      title: "count",
      status: "failed",
      turn: "t1",
      owner: null,
      progress: { done: 1, total: 3, note: null },
      messages: ["m2"],
      summary: null,
      error: "boom",
      code: null,
      reason: null,
    });
    expect(state.messages.m2).toMatchObject({
      job: "j1",
      turn: null,
      status: "failed",
      parts: [{ kind: "text", text: "w1" }],
    });
    expect(state.status).toBeNull(); // the job's end cleared its status line
    expect(state.errors).toEqual([{ seq: 13, error: "oops", code: "E1", turn: "t1", job: null }]);
  });
});

// ------------------------------------------------------------------ against the Python fold

function randomRecords(seed: number, count: number): WireRecord[] {
  let x = seed;
  const rand = (n: number) => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % n;
  };
  const pick = <T>(items: T[]) => items[rand(items.length)];
  const r = recorder("s_rand");
  const out: WireRecord[] = [r("session.created", { title: pick([null, "t"]) })];
  const turns = ["t1", "t2"];
  const jobs = ["j1", "j2"];
  const messages = ["m1", "m2", "m3"];
  const scope = () => pick([{ turn: pick(turns) }, { job: pick(jobs) }, {}, { turn: pick(turns), job: pick(jobs) }]);
  const part = () => ({ message: pick(messages), part: rand(3), ...scope() });
  const makers: (() => WireRecord)[] = [
    () => r("turn.started", { turn: pick(turns) }),
    () =>
      r(pick(["turn.completed", "turn.failed", "turn.cancelled", "turn.interrupted"]), {
        turn: pick(turns),
        error: "e",
        model: "m",
        reason: "r",
      }),
    () => r("message.started", { message: pick(messages), role: pick(["user", "assistant"]), ...scope() }),
    () => r("message.delta", { ...part(), kind: pick(["text", "reasoning"]), text: pick(["a", "b ", "c\n"]) }),
    () => r("message.delta", { ...part(), kind: pick(["text", "reasoning"]), text: pick(["a", "b ", "c\n"]) }),
    () =>
      r("message.completed", {
        message: pick(messages),
        role: "assistant",
        ...scope(),
        parts: [
          { kind: "text", text: "final" },
          ...(rand(2)
            ? [{ kind: "tool", call: "c1", name: "n", args: "{}", status: "completed", result: { ok: 1 } }]
            : []),
        ],
      }),
    () => r("tool.started", { ...part(), call: pick(["c1", "c2"]), name: "n" }),
    () => r("tool.args.delta", { ...part(), call: pick(["c1", "c2"]), text: "{" }),
    () => r("tool.called", { ...part(), call: pick(["c1", "c2"]), name: "n", args: "{}" }),
    () => r("tool.result", { ...part(), call: pick(["c1", "c2"]), status: pick(["completed", "failed"]), result: 7 }),
    () => r("job.started", { job: pick(jobs), title: "job", turn: pick([null, "t1"]) }),
    () => r("job.progress", { job: pick(jobs), done: rand(10), total: 10 }),
    () =>
      r(pick(["job.completed", "job.failed", "job.cancelled", "job.interrupted"]), {
        job: pick(jobs),
        error: "e",
        summary: "s",
      }),
    () => r("approval.requested", { approval: pick(["a1", "a2"]), action: "do", ...scope() }),
    () =>
      r("approval.resolved", {
        approval: pick(["a1", "a2"]),
        decision: pick(["approved", "denied", "expired"]),
        by: pick([null, "me"]),
      }),
    () => r("status", { text: "s", ...scope() }),
    () => r("error", { error: "e", ...scope() }),
    () => r("session.renamed", { title: pick(["named", "renamed"]), ...pick([{ auto: true }, { auto: false }, {}]) }),
    // Known types with fields that do not validate: opaque in Python, they only advance seq.
    () => r("message.delta", { ...part(), text: pick([null, 3]) }),
    () => r("message.completed", { message: pick(messages), role: pick(["assistant", "robot"]), ...scope() }),
    () => r("job.progress", { job: pick(jobs), done: pick([-1, "x", 1.5]) }),
    () => r("approval.resolved", { approval: pick(["a1", "a2"]), decision: "maybe" }),
    () => r("turn.completed", { turn: pick(["", null]) }),
    () => r("session.renamed", { title: pick(["", 7, null]) }),
  ];
  for (let i = 0; i < count; i++) out.push(pick(makers)());
  return out;
}

describe("a known type with invalid fields (Python's OpaqueEvent)", () => {
  it("only advances seq, like the Python fold, and breaks nothing after it", () => {
    const r = recorder("s_opaque");
    const records = [
      r("message.delta", { message: "m1", part: 0, text: "a" }),
      r("message.delta", { message: "m1", part: 0 }), // no text
      r("message.completed", { message: "m1", role: "assistant" }), // no parts
      r("job.progress", { job: "j1", done: "x" }),
      r("approval.resolved", { approval: "a1", decision: "maybe" }),
      r("message.delta", { message: "m1", part: 0, text: "b" }),
    ];
    const state = foldRecords(structuredClone(records));
    expect(state).toEqual({
      ...emptyState(),
      seq: 6,
      session: "s_opaque",
      updated_at: records[5].ts,
      messages: {
        m1: {
          id: "m1",
          role: "assistant",
          turn: null,
          job: null,
          status: "streaming",
          parts: [{ kind: "text", text: "ab" }],
        },
      },
      message_order: ["m1"],
    });
  });
});

describe("the Python fold", () => {
  it("gives the same state for random record sequences", () => {
    // Never skipped: without the repository's Python the comparison fails, it does not pass by default.
    expect(existsSync(python), `no Python at ${python}: run scripts/setup.sh or set SESSIONWIRE_PYTHON`).toBe(true);
    const cases = Array.from({ length: 60 }, (_, i) => randomRecords(i * 7919 + 1, 40));
    const program = [
      "import json, sys",
      "from sessionwire.events import Record",
      "from sessionwire.state import fold_records",
      "cases = json.load(sys.stdin)",
      "print(json.dumps([fold_records(Record.from_json(json.dumps(r)) for r in rs).to_dict() for rs in cases]))",
    ].join("\n");
    const expected = JSON.parse(
      execFileSync(python, ["-c", program], { input: JSON.stringify(cases), encoding: "utf8" }),
    );
    cases.forEach((records, i) => {
      expect(foldRecords(structuredClone(records)), `case ${i}`).toEqual(expected[i]);
    });
  });
});
