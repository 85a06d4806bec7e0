// @vitest-environment happy-dom
// Stop and Cancel: disabled while the request runs, and a refusal is shown, not swallowed.
import { render } from "solid-js/web";
import { afterEach, describe, expect, it } from "vitest";
import { Api, ApiError, type WireRecord } from "@sessionwire/client";
import { createConversation } from "@sessionwire/client/solid";
import { Transcript } from "./components/Transcript";
import { JobPanel } from "./components/Jobs";
import { createPending } from "./pending";

/** An Api whose cancel requests wait until the test settles them. */
class HeldApi extends Api {
  settle: ((error: Error | null) => void) | null = null;
  calls: string[] = [];
  private held(what: string): Promise<unknown> {
    this.calls.push(what);
    return new Promise((resolve, reject) => {
      this.settle = (error) => (error ? reject(error) : resolve({}));
    });
  }
  override cancelTurn(_id: string, _token: string, turn: string): Promise<unknown> {
    return this.held(`turn ${turn}`);
  }
  override cancelJob(_id: string, _token: string, job: string): Promise<unknown> {
    return this.held(`job ${job}`);
  }
}

let dispose: (() => void) | null = null;
afterEach(() => dispose?.());

function setup(view: "conversation" | "jobs") {
  const api = new HeldApi();
  const live = createConversation("s1", "tok", { api, schedule: (flush) => (flush(), () => {}) });
  let seq = 0;
  const add = (type: string, fields: Record<string, unknown>) =>
    live.onRecord({ v: 1, session: "s1", seq: ++seq, ts: seq, type, ...fields } as WireRecord);
  add("turn.started", { turn: "t1" });
  add("job.started", { job: "j1", title: "Count" });
  const root = document.createElement("div");
  document.body.append(root);
  dispose = render(
    () => (view === "jobs" ? <JobPanel live={live} by={() => "me"} /> : <Transcript live={live} by={() => "me"} />),
    root,
  );
  return { api, root };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe.each([
  ["conversation", "stop", "turn t1"],
  ["jobs", "job-cancel", "job j1"],
] as const)("%s: the %s button", (view, testid, call) => {
  it("is disabled while its request runs, and shows why the server refused", async () => {
    const { api, root } = setup(view);
    const button = root.querySelector<HTMLButtonElement>(`[data-testid=${testid}]`)!;
    expect(button.hidden).toBe(false);
    button.click();
    button.click(); // a second click while the first runs sends nothing
    expect(api.calls).toEqual([call]);
    expect(button.disabled).toBe(true);
    api.settle!(new ApiError(409, "conflict", `${call} already ended`));
    await tick();
    expect(button.disabled).toBe(false);
    const error = root.querySelector<HTMLElement>(`[data-testid=${testid}-error]`)!;
    expect(error.hidden).toBe(false);
    expect(error.textContent).toBe(`${call} already ended`);
    // The next attempt clears it.
    button.click();
    expect(error.hidden).toBe(true);
    api.settle!(null);
    await tick();
    expect(error.hidden).toBe(true);
  });
});

describe("the empty state", () => {
  it("waits for the conversation's state: never shown while it loads or was refused", () => {
    const live = createConversation("s1", "tok", { api: new HeldApi(), schedule: (flush) => (flush(), () => {}) });
    const root = document.createElement("div");
    dispose = render(() => <Transcript live={live} by={() => "me"} />, root);
    const empty = root.querySelector<HTMLElement>(".empty")!;
    expect(empty.hidden).toBe(true); // nothing loaded yet: not "Say something" over a long history
    live.onRecord({ v: 1, session: "s1", seq: 1, ts: 1, type: "session.created", title: null } as WireRecord);
    expect(empty.hidden).toBe(false);
    live.onRecord({ v: 1, session: "s1", seq: 2, ts: 2, type: "turn.started", turn: "t1" } as WireRecord);
    expect(empty.hidden).toBe(true);
  });
});

describe("messages sent while a turn runs, and Retry", () => {
  function conversation() {
    const live = createConversation("s1", "tok", { api: new HeldApi(), schedule: (flush) => (flush(), () => {}) });
    let seq = 0;
    const add = (type: string, fields: Record<string, unknown>) =>
      live.onRecord({ v: 1, session: "s1", seq: ++seq, ts: seq, type, ...fields } as WireRecord);
    const turn = (id: string, text: string) => {
      add("turn.started", { turn: id });
      add("message.started", { message: `u-${id}`, role: "user", turn: id });
      add("message.completed", { message: `u-${id}`, role: "user", turn: id, parts: [{ kind: "text", text }] });
    };
    return { live, add, turn };
  }

  it("shows a queued message with its text until its turn starts, then the turn instead", () => {
    const { live, turn } = conversation();
    const pending = createPending();
    const root = document.createElement("div");
    dispose = render(() => <Transcript live={live} by={() => "me"} pending={pending} />, root);
    turn("t1", "first");
    pending.add({ turn: "t2", text: "second\nline", policy: "queue" });
    const queued = () => root.querySelectorAll<HTMLElement>("[data-testid=queued-message]");
    expect(queued()).toHaveLength(1);
    expect(queued()[0].querySelector(".plain")?.textContent).toBe("second\nline");
    expect(queued()[0].querySelector("[data-testid=queued-status]")?.textContent).toContain("Queued");
    turn("t2", "second\nline");
    expect(queued()).toHaveLength(0);
    expect(root.querySelectorAll("[data-testid=turn]")).toHaveLength(2);
  });

  it("offers Retry on the last turn once it failed, and sends its text again", async () => {
    const { live, add, turn } = conversation();
    const sent: string[] = [];
    const root = document.createElement("div");
    const send = (text: string) => (sent.push(text), Promise.resolve());
    document.body.append(root); // clicks reach Solid's handlers through the document
    dispose = render(() => <Transcript live={live} by={() => "me"} send={send} />, root);
    turn("t1", "/fail");
    const retry = () => root.querySelectorAll<HTMLButtonElement>("[data-testid=retry]");
    expect(retry()[0].hidden).toBe(true); // running: nothing to retry
    add("turn.failed", { turn: "t1", error: "asked to fail" });
    expect(retry()[0].hidden).toBe(false);
    retry()[0].click();
    await tick();
    expect(sent).toEqual(["/fail"]);
    turn("t2", "/fail");
    expect(retry()[0].hidden).toBe(true); // only the last turn offers it
  });
});

describe("a message's copy button", () => {
  it("shows once the message is done and has text: not while it streams, nor for reasoning or a tool call only", () => {
    const live = createConversation("s1", "tok", { api: new HeldApi(), schedule: (flush) => (flush(), () => {}) });
    let seq = 0;
    const add = (type: string, fields: Record<string, unknown>) =>
      live.onRecord({ v: 1, session: "s1", seq: ++seq, ts: seq, type, ...fields } as WireRecord);
    const root = document.createElement("div");
    dispose = render(() => <Transcript live={live} by={() => "me"} />, root);
    add("turn.started", { turn: "t1" });
    const actions = (id: string) => root.querySelector<HTMLElement>(`[data-message-id=${id}] .message-actions`)!;
    add("message.started", { message: "m1", role: "assistant", turn: "t1" });
    add("message.delta", { message: "m1", turn: "t1", part: 0, kind: "reasoning", text: "thinking" });
    add("message.delta", { message: "m1", turn: "t1", part: 1, text: "" });
    add("message.delta", { message: "m1", turn: "t1", part: 1, text: "Hi" });
    expect(actions("m1").hidden).toBe(true); // streaming
    add("message.completed", {
      message: "m2",
      role: "assistant",
      turn: "t1",
      parts: [{ kind: "reasoning", text: "only thoughts" }],
    });
    expect(actions("m2").hidden).toBe(true); // no text to copy
    add("message.completed", {
      message: "m1",
      role: "assistant",
      turn: "t1",
      parts: [
        { kind: "reasoning", text: "thinking" },
        { kind: "text", text: "" },
        { kind: "text", text: "Hi" },
      ],
    });
    expect(actions("m1").hidden).toBe(false);
  });
});
