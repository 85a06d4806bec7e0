import { createEffect, createRoot } from "solid-js";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Api, ApiError, type Snapshot } from "../src/api.js";
import { emptyState, foldRecords, type WireRecord } from "../src/fold.js";
import { Conversation } from "../src/conversation.js";
import { solidHost } from "../src/solid.js";
import { MAX_STREAMS, SseTransport, type SourceLike } from "../src/sse.js";

class FakeSource implements SourceLike {
  onopen: ((event: Event) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  closed = false;
  listeners = new Map<string, ((event: MessageEvent) => void)[]>();
  constructor(readonly url: string) {}
  addEventListener(type: string, listener: (event: MessageEvent) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  close(): void {
    this.closed = true;
  }
  open(): void {
    this.onopen?.(new Event("open"));
  }
  emit(type: string, data: unknown): void {
    for (const listener of this.listeners.get(type) ?? []) listener({ data: JSON.stringify(data) } as MessageEvent);
  }
  record(record: WireRecord): void {
    this.emit(record.type, record);
  }
  fail(): void {
    this.onerror?.(new Event("error"));
  }
}

class FakeApi extends Api {
  snapshot: Snapshot = { seq: 0, state: emptyState() };
  failWith: ApiError | null = null;
  async session(): Promise<Snapshot> {
    if (this.failWith) throw this.failWith;
    return structuredClone(this.snapshot);
  }
}

function recorder(session = "s1") {
  let seq = 0;
  return (type: string, fields: Record<string, unknown> = {}): WireRecord =>
    ({ v: 1, session, seq: ++seq, ts: 1000 + seq, type, ...fields }) as WireRecord;
}

let sources: FakeSource[];
let pending: (() => void)[];
let api: FakeApi;

let link: SseTransport;

function live(id = "s1"): Conversation {
  return new Conversation(id, "tok", {
    api,
    host: solidHost, // the Solid adapter's stores: effects see which paths change
    schedule: (flush) => {
      pending.push(flush);
      return () => {
        pending = pending.filter((f) => f !== flush);
      };
    },
  });
}

/** Attach a conversation to the EventSource link and let its snapshot load. */
async function start(session: Conversation): Promise<void> {
  link.attach(session);
  await settle();
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

function frame(): void {
  const run = pending;
  pending = [];
  for (const flush of run) flush();
}

beforeEach(() => {
  sources = [];
  pending = [];
  api = new FakeApi();
  link = new SseTransport(
    { status: () => {}, refused: () => {} },
    {
      api,
      openSource: (url) => {
        const source = new FakeSource(url);
        sources.push(source);
        return source;
      },
      random: () => 0.5,
      maxStreams: MAX_STREAMS, // as a browser (Node streams every conversation)
      backoffMs: 100,
    },
  );
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("Conversation over EventSource", () => {
  it("batches deltas per frame and flushes them before a structural record", async () => {
    const session = live();
    await start(session);
    const source = sources[0];
    expect(source.url).toBe("/v1/sessions/s1/events?after=0&token=tok");
    source.open();
    expect(session.status.state).toBe("live");
    const r = recorder();
    source.record(r("session.created", { title: "x" }));
    source.record(r("message.started", { message: "m", role: "assistant" }));
    source.record(r("message.delta", { message: "m", part: 0, text: "a" }));
    source.record(r("message.delta", { message: "m", part: 0, text: "b" }));
    expect(session.state.messages.m.parts).toEqual([]); // not yet: waiting for the frame
    expect(pending).toHaveLength(1);
    frame();
    expect(session.state.messages.m.parts[0]).toEqual({ kind: "text", text: "ab" });
    source.record(r("message.delta", { message: "m", part: 0, text: "c" }));
    source.record(r("message.completed", { message: "m", role: "assistant", parts: [{ kind: "text", text: "abc!" }] }));
    // the completed record applied the pending delta first, then itself; no batch is left to land after it
    expect(pending).toHaveLength(0);
    expect(session.state.messages.m).toMatchObject({ status: "completed", parts: [{ kind: "text", text: "abc!" }] });
    expect(session.seq).toBe(6);
  });

  it("updates only the paths that change, keeping every object", async () => {
    const session = live();
    await start(session);
    const source = sources[0];
    const r = recorder();
    source.record(r("message.started", { message: "m", role: "assistant" }));
    source.record(r("message.delta", { message: "m", part: 0, text: "w1" }));
    frame();
    const message = session.state.messages.m;
    const part = session.state.messages.m.parts[0];
    const seen: string[] = [];
    let orderRuns = 0;
    const dispose = createRoot((dispose) => {
      createEffect(() => seen.push((session.state.messages.m.parts[0] as { text: string }).text));
      createEffect(() => {
        void session.state.message_order.length;
        orderRuns++;
      });
      return dispose;
    });
    for (let i = 2; i <= 20; i++) {
      source.record(r("message.delta", { message: "m", part: 0, text: ` w${i}` }));
      if (i % 5 === 0) frame();
    }
    frame();
    source.record(r("message.completed", { message: "m", role: "assistant", parts: [{ kind: "text", text: "done" }] }));
    expect(session.state.messages.m).toBe(message);
    expect(session.state.messages.m.parts[0]).toBe(part);
    expect(seen.length).toBeLessThanOrEqual(7); // one run per batch, not per record
    expect(seen.at(-1)).toBe("done");
    expect(orderRuns).toBe(1); // the message list itself was never replaced
    dispose();
  });

  it("never applies a record twice or another session's record", async () => {
    const session = live();
    await start(session);
    const source = sources[0];
    const r = recorder();
    const records = [r("session.created"), r("message.delta", { message: "m", part: 0, text: "x" })];
    for (const record of records) source.record(record);
    for (const record of records) source.record(record);
    source.record({ ...recorder("other")("message.delta", { message: "m", part: 0, text: "LEAK" }), seq: 3 });
    frame();
    expect(session.state).toEqual(foldRecords(records));
    expect(session.applied).toBe(2);
  });

  it("starts from the server's state and resumes from the last applied seq after a disconnect", async () => {
    const r = recorder();
    const first = [r("session.created"), r("message.delta", { message: "m", part: 0, text: "a" })];
    api.snapshot = { seq: 2, state: foldRecords(first) };
    const session = live();
    await start(session);
    expect(sources[0].url).toContain("after=2");
    sources[0].open();
    sources[0].record(r("message.delta", { message: "m", part: 0, text: "b" }));
    sources[0].record(r("message.delta", { message: "m", part: 0, text: "c" }));
    sources[0].fail(); // pending deltas are applied before resuming
    expect(sources[0].closed).toBe(true);
    expect(session.seq).toBe(4);
    expect(session.status.state).toBe("reconnecting");
    vi.advanceTimersByTime(100);
    expect(sources).toHaveLength(2);
    expect(sources[1].url).toContain("after=4");
    sources[1].fail();
    expect(session.status.attempt).toBe(2);
    vi.advanceTimersByTime(199);
    expect(sources).toHaveLength(2); // backoff doubled
    vi.advanceTimersByTime(1);
    expect(sources).toHaveLength(3);
    sources[2].open();
    expect(session.status).toMatchObject({ state: "live", attempt: 0 });
    sources[2].record(r("message.delta", { message: "m", part: 0, text: "d" }));
    frame();
    expect((session.state.messages.m.parts[0] as { text: string }).text).toBe("abcd");
  });

  it("applies a snapshot frame with reconcile, keeping existing objects", async () => {
    const session = live();
    await start(session);
    const r = recorder();
    const records = [
      r("message.started", { message: "m", role: "assistant" }),
      r("message.delta", { message: "m", part: 0, text: "he" }),
    ];
    for (const record of records) sources[0].record(record);
    frame();
    const message = session.state.messages.m;
    const part = message.parts[0];
    const later = [
      ...records,
      r("message.delta", { message: "m", part: 0, text: "llo" }),
      r("job.started", { job: "j", title: "J" }),
    ];
    sources[0].emit("lagging", { control: "lagging", session: "s1" });
    expect(session.status.state).toBe("catching-up");
    sources[0].emit("snapshot", { control: "snapshot", session: "s1", at: 4, state: foldRecords(later) });
    sources[0].emit("caught_up", { control: "caught_up", session: "s1" });
    expect(session.status.state).toBe("live");
    expect(session.state.messages.m).toBe(message);
    expect(session.state.messages.m.parts[0]).toBe(part);
    expect(part).toEqual({ kind: "text", text: "hello" });
    expect(session.state.jobs.j.title).toBe("J");
    expect(session.seq).toBe(4);
    sources[0].record(r("message.delta", { message: "m", part: 0, text: "!" }));
    frame();
    expect(part).toEqual({ kind: "text", text: "hello!" });
  });

  it("reports a session it may not read as failed", async () => {
    api.failWith = new ApiError(401, "unauthorized", "bad token for session s1");
    const session = live();
    await start(session);
    expect(session.status).toMatchObject({ state: "failed", detail: "bad token for session s1" });
    expect(sources).toHaveLength(0);
  });

  it("streams the most recently shown conversations only, and resumes a paused one from its seq", async () => {
    const sessions = Array.from({ length: MAX_STREAMS + 2 }, (_, i) => live(`s${i}`));
    for (const session of sessions) await start(session);
    const open = () => sources.filter((s) => !s.closed).map((s) => s.url.split("/")[3]);
    expect(open()).toEqual(sessions.slice(-MAX_STREAMS).map((s) => s.id));
    expect(sessions[0].status.state).toBe("paused");
    const r = recorder("s0");
    sources.find((s) => s.url.includes("/s2/"))!.record(r("session.created")); // not s0's source: dropped
    link.focus(sessions[0]);
    await settle();
    expect(open()).toEqual([...sessions.slice(-MAX_STREAMS + 1).map((s) => s.id), "s0"]);
    expect(sessions[0].seq).toBe(0);
    expect(sources.at(-1)!.url).toBe("/v1/sessions/s0/events?after=0&token=tok");
  });
});
