// The examples the READMEs show are the files the tests type-check and run, and they work
// against a real server: the package's Node tail script, and the repository README's producer.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Api } from "@sessionwire/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { root, type Server, startServer, until } from "./server.js";

const here = resolve(__dirname, "..");
let server: Server;
let api: Api;

beforeAll(async () => {
  server = await startServer();
  api = new Api({ baseUrl: server.url });
});
afterAll(() => server?.stop());

/** The fenced code blocks of a markdown file in the given language. */
function blocks(file: string, language: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(new RegExp("^```" + language + "\\n([\\s\\S]*?)^```$", "gm"))].map((m) => m[1]);
}

/** Start `node script args`: its output so far, and its exit once `done(stdout)` holds (or it exits). */
function run(script: string, args: string[], env: Record<string, string>, done: (out: string) => boolean) {
  const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, cwd: here });
  const io = { out: "", err: "" };
  child.stdout.on("data", (chunk: Buffer) => (io.out += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (io.err += chunk.toString()));
  const exited = new Promise<number | null>((settle) => child.once("exit", (code) => settle(code)));
  const finished = (async () => {
    try {
      await until(`${script} to print what it should`, () => done(io.out) || child.exitCode !== null);
    } catch (exc) {
      throw new Error(`${String(exc)}\nstdout: ${io.out}\nstderr: ${io.err}`);
    } finally {
      if (child.exitCode === null) child.kill("SIGINT");
    }
    return { ...io, code: await exited };
  })();
  return { io, finished };
}

describe("the package README", () => {
  const readme = join(here, "README.md");
  it("shows the SolidJS chat view and the Node script exactly as the files the tests check", () => {
    expect(blocks(readme, "tsx")).toEqual([readFileSync(join(here, "examples/chat.tsx"), "utf8")]);
    expect(blocks(readme, "js")).toEqual([readFileSync(join(here, "examples/tail.mjs"), "utf8")]);
  });

  it("tails a conversation with examples/tail.mjs while a turn streams", async () => {
    const session = await api.createSession("tail");
    const tail = run(join(here, "examples/tail.mjs"), [server.url, session.id, session.token], {}, (out) =>
      out.includes("turn.completed"),
    );
    await until(`the tail to be live (stderr: ${tail.io.err})`, () => tail.io.err.includes("live at seq"));
    await api.sendTurn(session.id, session.token, "/long 30");
    const { out, code } = await tail.finished;
    expect(out).toContain(Array.from({ length: 30 }, (_, i) => `w${i + 1}`).join(" "));
    expect(out).toMatch(/· turn\.started .*\n[\s\S]*· turn\.completed/);
    expect(code).toBe(0);
  });
});

describe("the repository README", () => {
  it("has a Node producer that publishes into a session through POST /records", async () => {
    const [producer] = blocks(join(root, "README.md"), "js");
    expect(producer).toContain("/records");
    const file = join(mkdtempSync(join(tmpdir(), "producer-")), "producer.mjs");
    writeFileSync(file, producer);
    const session = await api.createSession("producer");
    const env = { SESSIONWIRE_URL: server.url, SESSION: session.id, TOKEN: session.token };
    const { out, err, code } = await run(file, [], env, () => false).finished;
    expect(code, err).toBe(0);
    expect(out).toMatch(/published, last seq \d+/);
    const { state } = await api.session(session.id, session.token);
    const [id] = state.message_order;
    expect(state.messages[id]).toMatchObject({ role: "assistant", status: "completed" });
    expect(state.messages[id].parts).toEqual([{ kind: "text", text: "Deploy finished in 42 s." }]);
  });
});
