import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Api, type Snapshot } from "../src/api.js";
import { emptyState, foldRecords, type WireRecord } from "../src/fold.js";
import { Connection } from "../src/connection.js";
import { Conversation } from "../src/conversation.js";
import type { SocketLike } from "../src/socket.js";
import { MAX_STREAMS, type SourceLike } from "../src/sse.js";

class FakeSocket implements SocketLike {
  onopen: ((event: Event) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  sent: Record<string, unknown>[] = [];
  closed = false;
  constructor(readonly url: string) {}
  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }
  close(): void {
    this.closed = true;
  }
  open(): void {
    this.onopen?.(new Event("open"));
  }
  frame(data: unknown): void {
    this.onmessage?.({ data: JSON.stringify(data) });
  }
  drop(code = 1006, reason = ""): void {
    this.onclose?.({ code, reason });
  }
  /** The ops sent, without their ids. */
  ops(op: string): Record<string, unknown>[] {
    return this.sent.filter((m) => m.op === op).map(({ id: _, ...rest }) => rest);
  }
  /** Answer every subscribe sent so far that has no answer yet. */
  acceptAll(): void {
    for (const m of this.sent) if (m.op === "subscribe" && !m.answered) this.frame({ reply: m.id, ok: true });
    for (const m of this.sent) m.answered = true;
  }
}

class FakeApi extends Api {
  snapshots = new Map<string, Snapshot>();
  up = true;
  async session(id: string): Promise<Snapshot> {
    return structuredClone(this.snapshots.get(id) ?? { seq: 0, state: emptyState() });
  }
  async reachable(): Promise<boolean> {
    return this.up;
  }
}

function recorder(session: string, from = 0) {
  let seq = from;
  return (type: string, fields: Record<string, unknown> = {}): WireRecord =>
    ({ v: 1, session, seq: ++seq, ts: 1000 + seq, type, ...fields }) as WireRecord;
}

let sockets: FakeSocket[];
let sources: string[];
let pending: (() => void)[];
let api: FakeApi;

function makeLink(): Connection {
  return new Connection({
    api,
    socketUrl: "ws://test/v1/ws",
    openSocket: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    openSource: (url) => {
      sources.push(url);
      return { onopen: null, onerror: null, addEventListener: () => {}, close: () => {} } satisfies SourceLike;
    },
    random: () => 0.5,
    maxStreams: MAX_STREAMS, // as a browser (Node streams every conversation)
    backoffMs: 100,
  });
}

function live(id: string): Conversation {
  return new Conversation(id, `tok-${id}`, {
    api,
    schedule: (flush) => {
      pending.push(flush);
      return () => {
        pending = pending.filter((f) => f !== flush);
      };
    },
  });
}

function frame(): void {
  const run = pending;
  pending = [];
  for (const flush of run) flush();
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** A link with these conversations attached, its first socket open and every subscribe accepted. */
async function openLink(...ids: string[]): Promise<{ link: Connection; convs: Conversation[] }> {
  const link = makeLink();
  const convs = ids.map(live);
  for (const conv of convs) link.attach(conv);
  await settle();
  sockets[0].open();
  await settle();
  sockets[0].acceptAll();
  return { link, convs };
}

function text(session: Conversation, message = "m"): string {
  return (session.state.messages[message]?.parts[0] as { text: string } | undefined)?.text ?? "";
}

beforeEach(() => {
  sockets = [];
  sources = [];
  pending = [];
  api = new FakeApi();
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("one WebSocket for every open conversation", () => {
  it("subscribes each from its own seq and routes every record to its own store only", async () => {
    const link = makeLink();
    const ids = ["a", "b", "c", "d", "e", "f", "g", "h"];
    const recorders = new Map(ids.map((id) => [id, recorder(id)]));
    for (const [i, id] of ids.entries()) {
      const records = Array.from({ length: i }, () => recorders.get(id)!("status", { text: id }));
      api.snapshots.set(id, { seq: i, state: foldRecords(records) });
    }
    const sessions = ids.map(live);
    for (const session of sessions) link.attach(session);
    await settle();
    expect(sockets).toHaveLength(1);
    expect(sessions[0].status).toMatchObject({ state: "connecting", transport: "ws" });
    sockets[0].open();
    await settle();
    expect(sockets[0].ops("subscribe")).toEqual(
      ids.map((id, i) => ({ op: "subscribe", session: id, token: `tok-${id}`, after: i, batch: true })),
    );
    sockets[0].acceptAll();
    expect(sessions.map((s) => s.status.state)).toEqual(ids.map(() => "live"));
    // Interleaved streams, with records whose seqs collide across sessions.
    for (const id of ids) sockets[0].frame(recorders.get(id)!("message.started", { message: "m", role: "assistant" }));
    for (let w = 1; w <= 5; w++) {
      for (const id of ids)
        sockets[0].frame(recorders.get(id)!("message.delta", { message: "m", part: 0, text: `${id}${w} ` }));
    }
    expect(text(sessions[0])).toBe(""); // batched until the frame
    frame();
    for (const session of sessions)
      expect(text(session)).toBe([1, 2, 3, 4, 5].map((w) => `${session.id}${w} `).join(""));
    expect(sessions.map((s) => s.seq)).toEqual(ids.map((_, i) => i + 6));
    // A frame of a session not open in the tab is dropped; a reply for no op too.
    sockets[0].frame(recorder("zzz")("message.delta", { message: "m", part: 0, text: "LEAK" }));
    sockets[0].frame({ reply: 999, ok: true });
    frame();
    for (const session of sessions) expect(text(session)).not.toContain("LEAK");
    expect(link.status).toMatchObject({ transport: "ws", state: "open", sessions: 8 });
  });

  it("resumes every conversation from its last applied seq on the next socket, with backoff", async () => {
    const { link, convs: [a] } = await openLink("a", "b");
    const ra = recorder("a");
    const rb = recorder("b");
    sockets[0].frame(ra("message.started", { message: "m", role: "assistant" }));
    sockets[0].frame(ra("message.delta", { message: "m", part: 0, text: "x" }));
    sockets[0].frame(rb("session.created"));
    sockets[0].drop(); // the pending delta of a is applied before resuming
    expect(a.seq).toBe(2);
    expect(a.status).toMatchObject({ state: "reconnecting", attempt: 1 });
    expect(link.status).toMatchObject({ state: "reconnecting", attempt: 1 });
    vi.advanceTimersByTime(100);
    expect(sockets).toHaveLength(2);
    sockets[1].drop(); // the handshake fails, and the server does not answer HTTP either
    api.up = false;
    await settle();
    vi.advanceTimersByTime(199);
    expect(sockets).toHaveLength(2); // backoff doubled
    vi.advanceTimersByTime(1);
    expect(sockets).toHaveLength(3);
    sockets[2].open();
    await settle();
    expect(sockets[2].ops("subscribe")).toEqual([
      { op: "subscribe", session: "a", token: "tok-a", after: 2, batch: true },
      { op: "subscribe", session: "b", token: "tok-b", after: 1, batch: true },
    ]);
    // Records may come before the reply; a record already applied is never applied twice.
    sockets[2].frame({ ...ra("message.delta", { message: "m", part: 0, text: "y" }) });
    sockets[2].frame({ v: 1, session: "a", seq: 2, ts: 1, type: "message.delta", message: "m", part: 0, text: "x" });
    sockets[2].acceptAll();
    frame();
    expect(text(a)).toBe("xy");
    expect(a.status).toMatchObject({ state: "live", attempt: 0 });
    expect(a.applied).toBe(3);
  });

  it("subscribes again alone a conversation whose subscription the server ended", async () => {
    const { convs: [a, b] } = await openLink("a", "b");
    const ra = recorder("a");
    sockets[0].frame(ra("session.created"));
    sockets[0].frame({ control: "ended", session: "a" });
    expect(a.status.state).toBe("reconnecting");
    expect(b.status.state).toBe("live");
    vi.advanceTimersByTime(100);
    expect(sockets[0].ops("subscribe").at(-1)).toEqual({
      op: "subscribe",
      session: "a",
      token: "tok-a",
      after: 1,
      batch: true,
    });
    sockets[0].acceptAll();
    expect(a.status.state).toBe("live");
    sockets[0].frame({ control: "ended", session: "b", error: { code: "unauthorized", message: "no", status: 401 } });
    expect(b.status).toMatchObject({ state: "failed", detail: "no" });
  });

  it("fails for good a conversation deleted on the server, and subscribes it no more", async () => {
    const { convs: [a] } = await openLink("a");
    const before = sockets[0].ops("subscribe").length;
    sockets[0].frame({ control: "ended", session: "a", reason: "session_deleted" });
    expect(a.status).toMatchObject({ state: "failed", detail: "this conversation was deleted" });
    vi.advanceTimersByTime(10_000);
    expect(sockets[0].ops("subscribe").length).toBe(before);
  });

  it("fails a conversation it may not read, and reloads one the server has fewer records of", async () => {
    const link = makeLink();
    const [a, b] = [live("a"), live("b")];
    const ra = recorder("a");
    const old = [ra("session.created"), ra("status", { text: "old" })];
    api.snapshots.set("a", { seq: 2, state: foldRecords(old) });
    link.attach(a);
    link.attach(b);
    await settle();
    sockets[0].open();
    await settle();
    const [subA, subB] = sockets[0].sent;
    sockets[0].frame({ reply: subB.id, error: { code: "forbidden", message: "not your session b", status: 403 } });
    expect(b.status).toMatchObject({ state: "failed", detail: "not your session b" });
    // The server was reset: it has 1 record where this tab applied 2.
    api.snapshots.set("a", { seq: 1, state: foldRecords(old.slice(0, 1)) });
    sockets[0].frame({ reply: subA.id, error: { code: "cursor_ahead", message: "ahead", status: 409 } });
    await settle();
    expect(a.seq).toBe(1);
    expect(a.state.status).toBeNull();
    expect(sockets[0].ops("subscribe").at(-1)).toEqual({
      op: "subscribe",
      session: "a",
      token: "tok-a",
      after: 1,
      batch: true,
    });
    sockets[0].drop();
    vi.advanceTimersByTime(100);
    sockets[1].open();
    await settle();
    expect(sockets[1].ops("subscribe").map((m) => m.session)).toEqual(["a"]); // b stays failed
  });

  it("applies each batched frame's items in order, exactly as single frames", async () => {
    const { convs: [a, b] } = await openLink("a", "b");
    const ra = recorder("a");
    const rb = recorder("b");
    const started = ra("message.started", { message: "m", role: "assistant" });
    // Deltas in arrays are batched per animation frame, like single frames.
    sockets[0].frame([started, ra("message.delta", { message: "m", part: 0, text: "He" })]);
    sockets[0].frame([
      ra("message.delta", { message: "m", part: 0, text: "l" }),
      ra("message.delta", { message: "m", part: 0, text: "lo" }),
    ]);
    sockets[0].frame(rb("session.created")); // a single frame of another session between arrays
    expect(text(a)).toBe("");
    expect(a.seq).toBe(1);
    frame();
    expect(text(a)).toBe("Hello");
    expect(a.batches).toBe(2); // the structural record alone, then the deltas of the frame
    // A structural record in the middle of an array applies the deltas before it first: the final wins.
    sockets[0].frame([
      ra("message.delta", { message: "m", part: 0, text: " wor" }),
      ra("message.completed", { message: "m", role: "assistant", parts: [{ kind: "text", text: "Hello world!" }] }),
      ra("message.delta", { message: "m", part: 0, text: "LATE" }),
    ]);
    expect(text(a)).toBe("Hello world!");
    frame();
    expect(text(a)).toBe("Hello world!"); // a delta after the final does not change a completed message
    expect(a.seq).toBe(7);
    // Control frames inside arrays: lagging, a record already applied (dropped), then caught_up.
    sockets[0].frame([{ control: "lagging", session: "a" }, { ...started }]);
    expect(a.status.state).toBe("catching-up");
    sockets[0].frame([ra("status", { text: "busy" }), { control: "caught_up", session: "a" }]);
    expect(a.status.state).toBe("live");
    expect(a.state.status?.text).toBe("busy");
    expect(a.applied).toBe(8);
    expect(b.seq).toBe(1);
    // An `ended` in an array: that subscription alone is subscribed again, from its last applied seq.
    sockets[0].frame([{ control: "ended", session: "a" }]);
    expect(a.status.state).toBe("reconnecting");
    expect(b.status.state).toBe("live");
    vi.advanceTimersByTime(100);
    expect(sockets[0].ops("subscribe").at(-1)).toEqual({
      op: "subscribe",
      session: "a",
      token: "tok-a",
      after: 8,
      batch: true,
    });
  });

  it("unsubscribes a detached conversation and drops its frames", async () => {
    const { link, convs: [a] } = await openLink("a");
    link.detach(a);
    expect(sockets[0].ops("unsubscribe")).toEqual([{ op: "unsubscribe", session: "a" }]);
    sockets[0].frame(recorder("a")("session.created"));
    expect(a.seq).toBe(0);
    expect(link.status.sessions).toBe(0);
  });
});

describe("falling back to EventSource", () => {
  it("falls back when the server closes the socket as a policy violation", async () => {
    const link = makeLink();
    const sessions = ["a", "b", "c", "d"].map(live);
    for (const session of sessions) link.attach(session);
    link.focus(sessions[0]);
    await settle();
    sockets[0].open();
    sockets[0].drop(1008, "origin not allowed");
    await settle();
    expect(link.kind).toBe("sse");
    expect(link.status).toMatchObject({
      transport: "sse",
      detail: "the server refused the WebSocket: origin not allowed",
    });
    // The conversation shown streams, and two others: never more than three EventSources.
    expect(sources.map((url) => url.split("/")[3]).sort()).toEqual(["a", "c", "d"]);
    expect(sessions[1].status).toMatchObject({ state: "paused", transport: "sse" });
    vi.advanceTimersByTime(10_000);
    expect(sockets).toHaveLength(1);
  });

  it("falls back after two failed handshakes while HTTP answers, not while the server is down", async () => {
    const link = makeLink();
    link.attach(live("a"));
    api.up = false;
    await settle();
    for (let i = 0; i < 3; i++) {
      sockets.at(-1)!.drop();
      await settle();
      vi.advanceTimersByTime(10_000);
    }
    expect(link.kind).toBe("ws"); // the server is down: keep trying the socket
    api.up = true;
    sockets.at(-1)!.drop();
    await settle();
    expect(link.kind).toBe("ws"); // once may be a server that just came back
    vi.advanceTimersByTime(10_000);
    sockets.at(-1)!.drop();
    await settle();
    expect(link.kind).toBe("sse");
    expect(sources).toHaveLength(1);
  });
});
