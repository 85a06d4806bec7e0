import { describe, expect, it } from "vitest";
import { renderBlocks, safeHref } from "./markdown";

describe("renderBlocks", () => {
  it("splits text into top-level blocks", () => {
    const blocks = renderBlocks("# Title\n\nSome **bold** text.\n\n- a\n- b\n");
    expect(blocks.map((b) => b.html.trim())).toEqual([
      "<h1>Title</h1>",
      "<p>Some <strong>bold</strong> text.</p>",
      "<ul>\n<li>a</li>\n<li>b</li>\n</ul>",
    ]);
  });

  it("escapes raw HTML from model output", () => {
    const html = renderBlocks('<script>alert(1)</script>\n\nhi <img src=x onerror="alert(2)"> there')
      .map((b) => b.html)
      .join("");
    expect(html).not.toMatch(/<script|<img/i);
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(html).toContain("&lt;img src=x onerror=&quot;alert(2)&quot;&gt;");
  });

  it("drops unsafe link targets and keeps safe ones", () => {
    const html = renderBlocks("[a](javascript:alert(1)) [b](https://example.org) ![c](data:image/png;base64,xx)")
      .map((b) => b.html)
      .join("");
    expect(html).not.toContain("javascript:");
    expect(html).not.toContain("data:");
    expect(html).not.toContain("<img");
    expect(html).toContain('<a href="https://example.org"');
  });

  it("keeps earlier blocks' source stable while the tail grows", () => {
    const words = Array.from({ length: 50 }, (_, i) => `w${i + 1}`);
    const prefix = "Intro paragraph.\n\n";
    let previous = renderBlocks(prefix + words[0]);
    for (let n = 2; n <= words.length; n++) {
      const blocks = renderBlocks(prefix + words.slice(0, n).join(" "));
      expect(blocks[0].raw).toBe(previous[0].raw);
      expect(blocks).toHaveLength(2);
      previous = blocks;
    }
  });
});

describe("safeHref", () => {
  it.each([
    ["https://x.org", true],
    ["/relative", true],
    ["#anchor", true],
    ["mailto:a@b.c", true],
    ["javascript:alert(1)", false],
    [" JaVaScRiPt:alert(1)", false],
    ["java\tscript:alert(1)", false],
    ["data:text/html,x", false],
    ["vbscript:x", false],
  ])("%s -> %s", (href, ok) => {
    expect(safeHref(href)).toBe(ok);
  });
});
