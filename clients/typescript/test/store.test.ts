// The framework-free store: path-by-path application, what each batch changed, and batching
// that never lets a delta land after a structural record.
import { type Changes, ConversationStore, emptyState, foldRecords, type WireRecord } from "@sessionwire/client";
import { describe, expect, it } from "vitest";

function setup() {
  let pending: (() => void)[] = [];
  const store = new ConversationStore("s1", {
    schedule: (flush) => {
      pending.push(flush);
      return () => (pending = pending.filter((f) => f !== flush));
    },
  });
  const heard: Changes[] = [];
  store.subscribe((changes) => heard.push(changes));
  let seq = 0;
  const records: WireRecord[] = [];
  const add = (type: string, fields: Record<string, unknown> = {}) => {
    const record = { v: 1, session: "s1", seq: ++seq, ts: 1000 + seq, type, ...fields } as WireRecord;
    records.push(record);
    return store.push(record);
  };
  const frame = () => pending.splice(0).forEach((flush) => flush());
  return { store, heard, add, frame, records, pending: () => pending.length };
}

describe("ConversationStore", () => {
  it("tells what each batch changed: which message, which part, which turn, job and approval", () => {
    const { heard, add, frame } = setup();
    add("turn.started", { turn: "t1" });
    expect(heard.at(-1)).toMatchObject({ turns: new Set(["t1"]), session: false, seq: 1 });
    add("message.started", { message: "m1", role: "assistant", turn: "t1" });
    expect(heard.at(-1)!.messages).toEqual(new Set(["m1"]));
    expect(heard.at(-1)!.turns).toEqual(new Set(["t1"])); // the turn's message list grew
    add("message.delta", { message: "m1", turn: "t1", part: 0, text: "a" });
    add("message.delta", { message: "m1", turn: "t1", part: 1, kind: "reasoning", text: "b" });
    expect(heard).toHaveLength(2); // batched until the frame
    frame();
    const deltas = heard.at(-1)!;
    expect(deltas.records.map((r) => r.seq)).toEqual([3, 4]);
    expect(deltas.messages).toEqual(new Set(["m1"]));
    expect(deltas.parts.get("m1")).toEqual(new Set([0, 1]));
    expect(deltas.turns.size + deltas.jobs.size + deltas.approvals.size).toBe(0);
    add("approval.requested", { approval: "a1", action: "x", turn: "t1" });
    expect(heard.at(-1)!.approvals).toEqual(new Set(["a1"]));
    add("job.started", { job: "j1", title: "J", turn: "t1" });
    expect(heard.at(-1)!.jobs).toEqual(new Set(["j1"]));
    add("status", { text: "thinking", turn: "t1" });
    expect(heard.at(-1)!.session).toBe(true);
    add("turn.completed", { turn: "t1" });
    const end = heard.at(-1)!;
    expect(end.turns).toEqual(new Set(["t1"]));
    expect(end.messages).toEqual(new Set(["m1"])); // closed by its turn's end
    expect(end.parts.has("m1")).toBe(false); // as a whole
    expect(end.session).toBe(true); // the turn's status line cleared
  });

  it("flushes pending deltas before a structural record, and its state is the fold's", () => {
    const { store, heard, add, frame, records, pending } = setup();
    add("message.started", { message: "m1", role: "assistant" });
    add("message.delta", { message: "m1", part: 0, text: "a" });
    add("message.delta", { message: "m1", part: 0, text: "b" });
    expect(pending()).toBe(1);
    add("message.completed", { message: "m1", role: "assistant", parts: [{ kind: "text", text: "ab!" }] });
    expect(pending()).toBe(0);
    expect(heard.at(-1)!.records.map((r) => r.type)).toEqual(["message.delta", "message.delta", "message.completed"]);
    frame();
    expect(store.state).toEqual(foldRecords(records));
    expect(store.applied).toBe(4);
  });

  it("drops a record it has seen, one of another session, and everything under a snapshot", () => {
    const { store, heard, add, records } = setup();
    add("session.created", { title: "t" });
    expect(store.push(records[0])).toBe(false);
    expect(store.push({ ...records[0], session: "other", seq: 2 })).toBe(false);
    store.reset({ ...emptyState(), session: "s1", seq: 5, title: "later" }, 5);
    expect(heard.at(-1)).toMatchObject({ snapshot: true, seq: 5, records: [] });
    expect(store.state.title).toBe("later");
    expect(store.push({ ...records[0], seq: 5 })).toBe(false);
    expect(store.lastSeq).toBe(5);
  });

  it("applies at once with a scheduler that runs at once, and keeps scheduling after", () => {
    const store = new ConversationStore("s1", { schedule: (flush) => (flush(), () => {}) });
    const record = (seq: number, text: string) =>
      ({ v: 1, session: "s1", seq, ts: seq, type: "message.delta", message: "m", part: 0, text }) as WireRecord;
    store.push(record(1, "a"));
    store.push(record(2, "b"));
    expect(store.state.messages.m.parts[0]).toEqual({ kind: "text", text: "ab" });
    expect(store.batches).toBe(2);
  });
});
