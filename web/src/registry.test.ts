// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { createRegistry } from "./registry";

describe("registry", () => {
  it("keeps created sessions and their tokens in storage, newest first", () => {
    localStorage.clear();
    const registry = createRegistry(localStorage);
    registry.add({ id: "s1", token: "t1", title: null, created: 1 });
    const first = registry.sessions[0];
    registry.add({ id: "s2", token: "t2", title: null, created: 2 });
    expect(registry.sessions.map((s) => s.id)).toEqual(["s2", "s1"]);
    expect(registry.sessions[1]).toBe(first); // the item already shown is kept, not rebuilt
    registry.setTitle("s1", "first");
    registry.setTitle("s1", "hello"); // renamed on the server: the latest title shows
    registry.setTitle("s1", null); // not loaded yet: the title shown stays
    expect(registry.get("s1")?.title).toBe("hello");
    expect(registry.sessions[1]).toBe(first);
    const again = createRegistry(localStorage);
    expect(again.sessions.map((s) => [s.id, s.token, s.title])).toEqual([
      ["s2", "t2", null],
      ["s1", "t1", "hello"],
    ]);
  });

  it("picks up sessions another tab added and ignores garbage", () => {
    localStorage.clear();
    const registry = createRegistry(localStorage);
    const other = createRegistry(localStorage);
    other.add({ id: "s9", token: "t9", title: null, created: 9 });
    expect(registry.get("s9")).toBeUndefined();
    registry.refresh();
    expect(registry.get("s9")?.token).toBe("t9");
    localStorage.setItem("sessionwire.sessions", "{not json");
    expect(createRegistry(localStorage).sessions).toEqual([]);
  });
});
