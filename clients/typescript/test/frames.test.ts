// The default batch schedule: the next animation frame, or 50 ms when frames do not come (a hidden tab).
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Api } from "../src/api.js";
import type { WireRecord } from "../src/fold.js";
import { Conversation } from "../src/conversation.js";
import { nextFrame } from "../src/schedule.js";

let frames: FrameRequestCallback[] = [];

beforeEach(() => {
  vi.useFakeTimers();
  frames = [];
  vi.stubGlobal("requestAnimationFrame", (callback: FrameRequestCallback) => frames.push(callback));
  vi.stubGlobal("cancelAnimationFrame", (id: number) => {
    frames[id - 1] = () => {};
  });
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

const runFrames = () => frames.splice(0).forEach((callback) => callback(0));

describe("nextFrame", () => {
  it("runs once, on the frame or on the timer, whichever comes first", () => {
    const flush = vi.fn();
    nextFrame(flush);
    runFrames();
    vi.advanceTimersByTime(100);
    expect(flush).toHaveBeenCalledTimes(1);
    nextFrame(flush);
    vi.advanceTimersByTime(50);
    runFrames();
    expect(flush).toHaveBeenCalledTimes(2);
    const cancel = nextFrame(flush);
    cancel();
    runFrames();
    vi.advanceTimersByTime(100);
    expect(flush).toHaveBeenCalledTimes(2);
  });
});

describe("a hidden tab (no animation frames)", () => {
  it("still applies deltas, in order, within 50 ms, and before the final of their message", () => {
    const live = new Conversation("s1", "tok", { api: new Api() });
    let seq = 0;
    const add = (type: string, fields: Record<string, unknown>) =>
      live.onRecord({ v: 1, session: "s1", seq: ++seq, ts: seq, type, ...fields } as WireRecord);
    const text = () => (live.state.messages.m1?.parts[0] as { text: string } | undefined)?.text;
    add("turn.started", { turn: "t1" });
    for (const word of ["a ", "b ", "c "]) add("message.delta", { turn: "t1", message: "m1", part: 0, text: word });
    expect(text()).toBeUndefined(); // batched
    vi.advanceTimersByTime(50);
    expect(text()).toBe("a b c ");
    expect(live.batches).toBe(2);
    add("message.delta", { turn: "t1", message: "m1", part: 0, text: "d" });
    add("message.completed", {
      turn: "t1",
      message: "m1",
      role: "assistant",
      parts: [{ kind: "text", text: "final" }],
    });
    expect(text()).toBe("final"); // the pending delta went first, the final is authoritative
    expect(live.state.seq).toBe(6);
    vi.advanceTimersByTime(100); // nothing pending is applied late
    expect(text()).toBe("final");
    expect(live.applied).toBe(6);
  });
});
