// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { BlockView } from "./markdown";

function collect(root: Node): Node[] {
  const out: Node[] = [];
  const walk = (node: Node) => {
    out.push(node);
    node.childNodes.forEach(walk);
  };
  root.childNodes.forEach(walk);
  return out;
}

describe("BlockView", () => {
  it("grows a streaming paragraph in place: no node that held text is replaced", () => {
    const container = document.createElement("div");
    const view = new BlockView(container);
    const intro = "Intro with **bold**.\n\n";
    const words = ["w1"];
    view.update(intro + words.join(" "));
    const before = collect(container).filter((node) => (node.textContent ?? "").trim());
    for (let i = 2; i <= 200; i++) {
      words.push(`w${i}`);
      view.update(intro + words.join(" "));
    }
    const after = collect(container);
    for (const node of before) expect(after).toContain(node);
    expect(container.children).toHaveLength(2);
    expect(container.children[1].textContent?.trim()).toBe(words.join(" "));
    expect(container.querySelector("strong")?.textContent).toBe("bold");
  });

  it("touches only the block that changed", () => {
    const container = document.createElement("div");
    const view = new BlockView(container);
    view.update("# Title\n\nfirst\n\nsecond");
    const [title, first, second] = Array.from(container.children);
    const titleText = title.querySelector("h1")?.firstChild;
    view.update("# Title\n\nfirst\n\nsecond and more");
    expect(Array.from(container.children)).toEqual([title, first, second]);
    expect(title.querySelector("h1")?.firstChild).toBe(titleText);
    expect(second.textContent?.trim()).toBe("second and more");
  });

  it("follows a final text that differs from what streamed", () => {
    const container = document.createElement("div");
    const view = new BlockView(container);
    view.update("a\n\nb\n\nc");
    view.update("- one\n- two");
    expect(container.children).toHaveLength(1);
    expect(container.querySelectorAll("li")).toHaveLength(2);
  });

  it("never puts model HTML into the page", () => {
    const container = document.createElement("div");
    new BlockView(container).update('<img src=x onerror="alert(1)"> <script>alert(2)</script>');
    expect(container.querySelector("img, script")).toBeNull();
    expect(container.textContent).toContain("<img src=x");
  });
});

describe("BlockView while a message streams", () => {
  // Snippets that stream into markdown of many kinds; a random split of them must render exactly as
  // the whole text rendered at once, however it was cut into updates.
  const SNIPPETS = [
    "word ",
    "**bold** ",
    "`code` ",
    "\n",
    "\n\n",
    "- item ",
    "1. first ",
    "# Head ",
    "> quote ",
    "```\n",
    "```js\n",
    "    indented\n",
    "| a | b |\n",
    "|---|---|\n",
    "***\n",
    "[x](https://x.org) ",
    "<b>raw</b> ",
    "Title\n===\n",
    "  - nested ",
    "\t",
    "[ref]: https://r.org\n",
    "[ref] ",
    "1.",
    " ",
    "2) ",
    "+ ",
    "~~~\n",
    "    ",
    "\r\n",
  ];
  function randomText(seed: number, length: number): string {
    let state = seed;
    const rand = (n: number) => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state % n;
    };
    let text = "";
    while (text.length < length) text += SNIPPETS[rand(SNIPPETS.length)];
    return text;
  }

  it.each(Array.from({ length: 70 }, (_, i) => i + 1))(
    "renders like a full render, cut at random (seed %i)",
    (seed) => {
      const text = randomText(seed, 600);
      const streamed = document.createElement("div");
      const view = new BlockView(streamed);
      let at = 0;
      let step = seed;
      while (at < text.length) {
        step = (step * 7 + 3) % 23;
        at = Math.min(text.length, at + 1 + step);
        view.update(text.slice(0, at));
        const whole = document.createElement("div");
        new BlockView(whole).update(text.slice(0, at));
        expect(streamed.innerHTML, `seed ${seed} at ${at}`).toBe(whole.innerHTML);
      }
    },
  );
});
