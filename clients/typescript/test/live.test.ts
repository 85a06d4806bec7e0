// The package as a user runs it in Node 20, against a real `sessionwire serve`: exact resume
// while connections are cut at random, many sessions on one WebSocket, the fallback to event
// streams, and a stale cursor answered by a snapshot.
import { Api, Connection, type ConnectionOptions, Conversation, FetchEventSource } from "@sessionwire/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type Server, sleep, startServer, until } from "./server.js";

let server: Server;
let api: Api;

beforeAll(async () => {
  server = await startServer({ query: "?retain=10" });
  api = new Api({ baseUrl: server.url });
});
afterAll(() => server?.stop());

/** A seeded generator, so a failing run can be replayed (its seed is in the test's name). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every seq a conversation applied, and the snapshots it started from. */
function journal(chat: Conversation) {
  const log = { seqs: [] as number[], snapshots: [] as number[], foreign: 0 };
  chat.subscribe((changes) => {
    if (changes.snapshot) log.snapshots.push(changes.seq);
    for (const record of changes.records) {
      if (record.session !== chat.id) log.foreign++;
      log.seqs.push(record.seq);
    }
  });
  return log;
}

/** The seqs after the last snapshot are exactly the ones that follow it, each once, in order. */
function expectExact(log: ReturnType<typeof journal>, last: number): void {
  expect(log.foreign).toBe(0);
  const from = log.snapshots.at(-1) ?? 0;
  const after = log.seqs.slice(log.seqs.findIndex((seq) => seq > from));
  const expected = Array.from({ length: last - from }, (_, i) => from + 1 + i);
  expect(after, `snapshots at ${log.snapshots}; seqs ${log.seqs.join(",")}`).toEqual(expected);
  for (let i = 1; i < log.seqs.length; i++) expect(log.seqs[i]).toBeGreaterThan(log.seqs[i - 1]);
}

/** Wait until `turns` turns and `jobs` jobs ended, then until the conversation stands where the server does. */
async function settled(chat: Conversation, turns = 1, jobs = 0): Promise<number> {
  let seq = 0;
  await until("the session's turns and jobs to end", async () => {
    const { state } = await api.session(chat.id, chat.token);
    const ended = (runs: { status: string }[], count: number) =>
      runs.length === count && runs.every((run) => run.status !== "running");
    seq = state.seq;
    return ended(Object.values(state.turns), turns) && ended(Object.values(state.jobs), jobs);
  });
  await until(`the conversation to reach seq ${seq}`, () => chat.seq >= seq);
  const { state } = await api.session(chat.id, chat.token);
  expect(chat.state).toEqual(state);
  return state.seq;
}

function words(text: string): string[] {
  return text.split(/\s+/).filter(Boolean);
}

/** The text of a message. */
function textOf(chat: Conversation, id: string): string {
  return chat.state.messages[id].parts.map((part) => ("text" in part ? part.text : "")).join("");
}

const quick = { backoffMs: 10, random: () => 0.5 } satisfies ConnectionOptions;

describe.each((process.env.SEEDS ?? "1,2").split(",").map(Number))("exact resume while the connection is cut at random (seed %i)", (seed) => {
  it.each(["ws", "sse"] as const)("over %s: every seq once, in order, the server's state at the end", async (kind) => {
    const random = prng(seed * 7919 + (kind === "ws" ? 0 : 1));
    const cuts: (() => void)[] = [];
    let count = 0;
    const connection = new Connection({
      api,
      ...quick,
      openSocket:
        kind === "ws"
          ? (url) => {
              const socket = new WebSocket(url);
              cuts.push(() => socket.readyState === WebSocket.OPEN && socket.terminate());
              return socket;
            }
          : null,
      openSource: (url) =>
        new FetchEventSource(url, {
          fetch: (input, init) => {
            // A cut: the connection drops under the reader, as a network would drop it.
            const cut = new AbortController();
            init?.signal?.addEventListener("abort", () => cut.abort());
            cuts.push(() => cut.abort());
            return fetch(input, { ...init, signal: cut.signal });
          },
        }),
    });
    const created = await api.createSession("cuts");
    const chat = new Conversation(created.id, created.token, { api });
    const log = journal(chat);
    connection.attach(chat);
    await until("the conversation to be live", () => chat.status.state === "live");

    let cutting = true;
    const cutter = (async () => {
      while (cutting) {
        await sleep(20 + random() * 180);
        const open = cuts.splice(0);
        if (cutting && open.length > 0) {
          open.at(-1)!();
          count++;
        }
      }
    })();
    await chat.sendTurn("/long 2000");
    await chat.sendTurn("/job 1000 x");
    const last = await settled(chat, 2, 1).finally(() => (cutting = false));
    await cutter;
    expect(count, "connections cut").toBeGreaterThan(3);
    expectExact(log, last);
    expect(log.snapshots).toHaveLength(1); // the load; every resume was exact, none fell back to a snapshot

    const [answer] = Object.values(chat.state.turns)
      .flatMap((turn) => turn.messages)
      .filter((id) => chat.state.messages[id].role === "assistant");
    expect(words(textOf(chat, answer))).toEqual(Array.from({ length: 2000 }, (_, i) => `w${i + 1}`));
    const [job] = Object.values(chat.state.jobs);
    expect(job.status).toBe("completed");
    expect(words(job.messages.map((id) => textOf(chat, id)).join(" "))).toHaveLength(1000);
    chat.close();
    connection.close();
  });
});

describe("one WebSocket for many sessions", () => {
  it("carries two sessions streaming at once, with no record of one in the other", async () => {
    let sockets = 0;
    const connection = new Connection({
      api,
      ...quick,
      openSocket: (url) => {
        sockets++;
        return new WebSocket(url);
      },
    });
    const [a, b] = await Promise.all([api.createSession("a"), api.createSession("b")]);
    const chats = [connection.open(a.id, a.token), connection.open(b.id, b.token)];
    const logs = chats.map(journal);
    await until("both to be live", () => chats.every((chat) => chat.status.state === "live"));
    await Promise.all([chats[0].sendTurn("/long 300"), chats[1].sendTurn("/long 200")]);
    const lasts = await Promise.all(chats.map((chat) => settled(chat)));
    expect(sockets).toBe(1);
    logs.forEach((log, i) => expectExact(log, lasts[i]));
    const counts = chats.map((chat) => {
      const [id] = chat.state.message_order.filter((m) => chat.state.messages[m].role === "assistant");
      return words(textOf(chat, id)).length;
    });
    expect(counts).toEqual([300, 200]);
    expect(connection.status).toMatchObject({ transport: "ws", state: "open", sessions: 2 });
    connection.close();
  });
});

describe("without the WebSocket", () => {
  it("falls back to event streams when the server refuses the WebSocket, and streams exactly", async () => {
    const connection = new Connection({
      api,
      ...quick,
      // A page of another site: the server refuses its WebSocket.
      openSocket: (url) => new WebSocket(url, { origin: "http://evil.example" }),
    });
    const created = await api.createSession("fallback");
    const chat = connection.open(created.id, created.token);
    const log = journal(chat);
    await until("the fallback", () => connection.kind === "sse" && chat.status.state === "live");
    expect(connection.status.detail).toMatch(/WebSocket/);
    expect(chat.status.transport).toBe("sse");
    await chat.sendTurn("/long 300");
    expectExact(log, await settled(chat));
    connection.close();
  });
});

describe("a stale cursor", () => {
  it("is answered by a snapshot, and the records after it follow exactly", async () => {
    let offline = false;
    const sockets: WebSocket[] = [];
    const flaky = new Api({
      baseUrl: server.url,
      fetch: (input, init) => (offline ? Promise.reject(new TypeError("offline")) : fetch(input, init)),
    });
    const connection = new Connection({
      api: flaky,
      ...quick,
      openSocket: (url) => {
        const socket = new WebSocket(offline ? url.replace(/:\d+\//, ":9/") : url);
        sockets.push(socket);
        return socket;
      },
    });
    const created = await api.createSession("stale");
    const chat = connection.open(created.id, created.token);
    const log = journal(chat);
    await until("live", () => chat.status.state === "live");
    const cursor = chat.seq;

    offline = true;
    sockets.at(-1)!.terminate();
    await until("the conversation to notice", () => chat.status.state === "reconnecting");
    // Meanwhile 4,500 records: more than the server keeps in memory (4,096); its log keeps a
    // snapshot (every 1,000 records) and only the last 10 records after it.
    for (let i = 0; i < 9; i++) {
      await api.publish(
        created.id,
        created.token,
        Array.from({ length: 500 }, (_, j) => ({ type: "status", text: `step ${i * 500 + j}` })),
      );
    }
    expect(chat.seq).toBe(cursor);
    offline = false;

    await until("the snapshot", () => log.snapshots.length === 2, 20_000);
    await chat.publish([{ type: "status", text: "after" }]);
    const { state, seq } = await api.session(created.id, created.token);
    await until("the last record", () => chat.seq === seq);
    expect(log.snapshots[1]).toBeGreaterThan(cursor + 4000);
    expectExact(log, seq);
    expect(chat.state).toEqual(state);
    expect(chat.state.status?.text).toBe("after");
    connection.close();
  });
});

describe("a subscription refused for good", () => {
  it.each(["ws", "sse"] as const)("over %s: a rotated token fails the conversation with the reason, once", async (kind) => {
    let opened = 0;
    const connection = new Connection({
      api,
      ...quick,
      openSocket: kind === "ws" ? (url) => new WebSocket(url) : null,
      openSource: (url) => {
        opened++;
        return new FetchEventSource(url);
      },
    });
    const created = await api.createSession("rotated");
    const chat = connection.open(created.id, created.token);
    await until("live", () => chat.status.state === "live");
    const fresh = await api.rotateToken(created.id, created.token);
    await until("the failure", () => chat.status.state === "failed");
    expect(chat.status.detail).toMatch(/rotated/);
    const streams = opened;
    await sleep(500); // no retry loop: nothing is opened again
    expect(opened).toBe(streams);
    expect(chat.status.state).toBe("failed");
    // The new token opens it again, in a new conversation.
    const again = connection.open(created.id, fresh);
    await until("live again", () => again.status.state === "live");
    connection.close();
  });
});
