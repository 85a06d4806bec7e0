// @vitest-environment happy-dom
// The SolidJS adapter renders the package README's chat view: a message element is the same DOM
// node from its first delta to its `message.completed`, and through a snapshot.
import type { WireRecord } from "@sessionwire/client";
import { createConversation } from "@sessionwire/client/solid";
import { render } from "solid-js/web";
import { afterEach, describe, expect, it } from "vitest";
import { Chat } from "../examples/chat.js";

let dispose: (() => void) | null = null;
afterEach(() => {
  dispose?.();
  dispose = null;
  document.body.innerHTML = "";
});

function setup() {
  let pending: (() => void)[] = [];
  const chat = createConversation("s1", "tok", {
    schedule: (flush) => {
      pending.push(flush);
      return () => (pending = pending.filter((f) => f !== flush));
    },
  });
  let seq = 0;
  const add = (type: string, fields: Record<string, unknown> = {}) =>
    chat.onRecord({ v: 1, session: "s1", seq: ++seq, ts: 1000 + seq, type, ...fields } as WireRecord);
  const frame = () => pending.splice(0).forEach((flush) => flush());
  const root = document.createElement("div");
  document.body.append(root);
  dispose = render(() => <Chat chat={chat} />, root);
  const article = (id: string) => root.querySelector<HTMLElement>(`article[data-message="${id}"]`);
  return { chat, add, frame, article, root };
}

describe("the Solid adapter", () => {
  it("keeps a streaming message's element (and its part's) from the first delta to message.completed", () => {
    const { chat, add, frame, article } = setup();
    add("session.created");
    add("turn.started", { turn: "t1" });
    add("message.started", { message: "m1", role: "assistant", turn: "t1" });
    add("message.delta", { message: "m1", turn: "t1", part: 0, text: "w1" });
    frame();
    const element = article("m1")!;
    const paragraph = element.querySelector("p")!;
    expect(paragraph.textContent).toBe("w1");
    for (let i = 2; i <= 40; i++) {
      add("message.delta", { message: "m1", turn: "t1", part: 0, text: ` w${i}` });
      if (i % 7 === 0) frame();
      expect(article("m1")).toBe(element);
    }
    frame();
    expect(paragraph.textContent).toBe(Array.from({ length: 40 }, (_, i) => `w${i + 1}`).join(" "));
    expect(element.dataset.status).toBe("streaming");
    add("message.completed", { message: "m1", turn: "t1", role: "assistant", parts: [{ kind: "text", text: "done" }] });
    expect(article("m1")).toBe(element);
    expect(element.querySelector("p")).toBe(paragraph);
    expect(paragraph.textContent).toBe("done");
    expect(element.dataset.status).toBe("completed");
    add("turn.completed", { turn: "t1" });
    expect(chat.state.turns.t1.status).toBe("completed");
    expect(article("m1")).toBe(element);
  });

  it("keeps every element shown through a snapshot, reconciled by id", () => {
    const { chat, add, frame, article, root } = setup();
    add("turn.started", { turn: "t1" });
    add("message.started", { message: "m1", role: "assistant", turn: "t1" });
    add("message.delta", { message: "m1", turn: "t1", part: 0, text: "hello" });
    frame();
    const element = article("m1")!;
    const paragraph = element.querySelector("p")!;
    const state = structuredClone(JSON.parse(JSON.stringify(chat.state)));
    state.messages.m1.parts[0].text = "hello world";
    state.messages.m2 = { id: "m2", role: "assistant", turn: "t1", job: null, status: "streaming", parts: [] };
    state.message_order.push("m2");
    state.turns.t1.messages.push("m2");
    chat.onControl("snapshot", { control: "snapshot", session: "s1", at: 10, state: { ...state, seq: 10 } });
    expect(article("m1")).toBe(element);
    expect(element.querySelector("p")).toBe(paragraph);
    expect(paragraph.textContent).toBe("hello world");
    expect(root.querySelectorAll("article")).toHaveLength(2);
    expect(chat.seq).toBe(10);
  });

  it("shows the subscription's state as it changes", () => {
    const { chat, root } = setup();
    expect(root.querySelector("main > p")!.textContent).toBe("connecting");
    chat.report({ state: "live" });
    expect(root.querySelector("main > p")!.textContent).toBe("live");
  });
});
