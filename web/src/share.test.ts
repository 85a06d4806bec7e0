import { describe, expect, it } from "vitest";
import { parseHash, parseTarget, sessionHash, shareLink } from "./share";

const PAGE = "http://127.0.0.1:8765/";

describe("parseHash", () => {
  it.each([
    ["", { id: null, token: null }],
    ["#/", { id: null, token: null }],
    ["#/s/s_1", { id: "s_1", token: null }],
    ["#/s/s_1?token=abc", { id: "s_1", token: "abc" }],
    ["#/s/s_1?token=", { id: "s_1", token: null }],
    ["#/s/a%20b?token=x%2By", { id: "a b", token: "x+y" }],
    ["#/s/%E0%A4%A?token=x", { id: null, token: null }],
  ])("%s", (hash, route) => {
    expect(parseHash(hash)).toEqual(route);
  });
});

describe("shareLink", () => {
  it("is the page's address with the conversation and its token in the fragment", () => {
    expect(shareLink(PAGE, "s_1", "t/k+n")).toBe("http://127.0.0.1:8765/#/s/s_1?token=t%2Fk%2Bn");
    expect(shareLink(`${PAGE}#/s/other`, "s_1", "tok")).toBe(`${PAGE}#/s/s_1?token=tok`);
  });

  it("round-trips through parseHash and parseTarget", () => {
    const link = shareLink(PAGE, "a b/c", "t?&=#");
    expect(parseHash(link.slice(link.indexOf("#")))).toEqual({ id: "a b/c", token: "t?&=#" });
    expect(parseTarget(link, "", PAGE)).toEqual({ id: "a b/c", token: "t?&=#" });
    expect(sessionHash("s 1")).toBe("#/s/s%201");
  });
});

describe("parseTarget", () => {
  it("takes a link that carries its token, whatever the token field says", () => {
    expect(parseTarget(`  ${PAGE}#/s/s_1?token=abc `, "other", PAGE)).toEqual({ id: "s_1", token: "abc" });
    expect(parseTarget("#/s/s_1?token=abc", "", PAGE)).toEqual({ id: "s_1", token: "abc" });
  });

  it("takes a link without a token when the token is entered", () => {
    expect(parseTarget(`${PAGE}#/s/s_1`, " tok ", PAGE)).toEqual({ id: "s_1", token: "tok" });
    expect(parseTarget(`${PAGE}#/s/s_1`, "", PAGE)).toEqual({ error: expect.stringContaining("no token") });
  });

  it("takes an id and a token", () => {
    expect(parseTarget("s_1", "tok", PAGE)).toEqual({ id: "s_1", token: "tok" });
    expect(parseTarget("s_1", "", PAGE)).toEqual({ error: expect.stringContaining("token") });
  });

  it("refuses what it cannot open here", () => {
    expect(parseTarget("", "tok", PAGE)).toEqual({ error: expect.stringContaining("Paste a link") });
    expect(parseTarget("https://elsewhere.example/#/s/s_1?token=a", "", PAGE)).toEqual({
      error: expect.stringContaining("another server (https://elsewhere.example)"),
    });
    expect(parseTarget(`${PAGE}#/x`, "tok", PAGE)).toEqual({ error: expect.stringContaining("neither") });
    expect(parseTarget("two words", "tok", PAGE)).toEqual({ error: expect.stringContaining("neither") });
  });

  it("never reads a link without its scheme as one for this server", () => {
    // Resolved against this page these would be http://127.0.0.1:8765/…: another server's token sent here.
    for (const text of [
      "elsewhere.example/#/s/x?token=y",
      "elsewhere.example:8765/#/s/x?token=y",
      "//elsewhere.example/#/s/x?token=y",
      "/#/s/x?token=y",
      "./#/s/x?token=y",
      "127.0.0.1:8765/#/s/x?token=y",
    ]) {
      expect(parseTarget(text, "", PAGE), text).toEqual({ error: expect.stringMatching(/whole link|web page/) });
    }
    expect(parseTarget("ftp://127.0.0.1:8765/#/s/x?token=y", "", PAGE)).toEqual({
      error: expect.stringContaining("web page"),
    });
    expect(parseTarget("http://127.0.0.1:8766/#/s/x?token=y", "", PAGE)).toEqual({
      error: expect.stringContaining("another server (http://127.0.0.1:8766)"),
    });
  });

  it("takes a whole link to this server whatever its path, and a bare fragment", () => {
    expect(parseTarget("http://127.0.0.1:8765/index.html#/s/x?token=y", "", PAGE)).toEqual({ id: "x", token: "y" });
    expect(parseTarget("HTTP://127.0.0.1:8765#/s/x?token=y", "", PAGE)).toEqual({ id: "x", token: "y" });
    expect(parseTarget("#/s/x", "tok", PAGE)).toEqual({ id: "x", token: "tok" });
  });
});
