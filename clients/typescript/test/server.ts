// A real `sessionwire serve` on a free loopback port with a SQLite file of its own, for the
// tests that talk to a server as a user of the package would.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const root = resolve(__dirname, "../../..");
const cli = process.env.SESSIONWIRE_CLI ?? resolve(root, ".venv/bin/sessionwire");

export interface Server {
  url: string;
  stop(): Promise<void>;
}

/** A port nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address ? done(address.port) : fail(new Error("no port"))));
    });
  });
}

/** Start a server (`query` is added to its SQLite URL, as `?retain=10`) and wait until it answers. */
export async function startServer(options: { query?: string; tokenDelayMs?: number } = {}): Promise<Server> {
  if (!existsSync(cli)) throw new Error(`no sessionwire at ${cli}: run scripts/setup.sh --dev`);
  const dir = mkdtempSync(join(tmpdir(), "sessionwire-ts-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [
    "serve",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "--store",
    `sqlite:///${join(dir, "events.db")}${options.query ?? ""}`,
    "--token-delay-ms",
    String(options.tokenDelayMs ?? 1),
    "--log-level",
    "warning",
  ];
  const child: ChildProcess = spawn(cli, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sessionwire serve exited with ${child.exitCode}:\n${stderr}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`sessionwire serve did not answer within 30 s:\n${stderr}`);
    }
    await sleep(100);
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((done) => child.once("exit", done));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/** Wait until `check` holds, polling; fail with `what` after `ms`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
