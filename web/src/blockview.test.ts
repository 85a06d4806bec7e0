// @vitest-environment happy-dom
import { describe, expect, it, vi } from "vitest";
import core from "highlight.js/lib/core";
import javascript from "highlight.js/lib/languages/javascript";
import python from "highlight.js/lib/languages/python";
import { createHighlight, type Highlight, type Highlighter, lazyHighlighter } from "./highlight";
import { BlockView, codeOf, fenceLanguage } from "./markdown";

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

describe("BlockView with a highlighter", () => {
  const hljs = core.newInstance();
  hljs.registerLanguage("python", python);
  hljs.registerLanguage("javascript", javascript);
  /** A highlighter that is loaded, and counts what it highlights. */
  function counted() {
    const highlight = createHighlight(hljs);
    const calls: string[] = [];
    const highlighter: Highlighter = {
      current: () => (code, lang) => {
        calls.push(code);
        return highlight(code, lang);
      },
      request: () => {},
      subscribe: () => () => {},
    };
    return { highlighter, calls };
  }

  it("never highlights or patches a code block again while the text after it streams", () => {
    const { highlighter, calls } = counted();
    const container = document.createElement("div");
    const view = new BlockView(container, highlighter);
    const code = "```python\ndef f(x):\n    return x + 1  # one\n```\n\n";
    const words = ["w1"];
    view.update(code + words.join(" "));
    const block = container.querySelector(".code-block")!;
    expect(block.querySelector("code.hljs.language-python .hljs-keyword")?.textContent).toBe("def");
    const nodes = collect(block);
    const seen: MutationRecord[] = [];
    const observer = new MutationObserver((records) => seen.push(...records));
    observer.observe(block, { subtree: true, childList: true, characterData: true, attributes: true });
    for (let i = 2; i <= 100; i++) {
      words.push(`w${i}`);
      view.update(code + words.join(" "));
    }
    seen.push(...observer.takeRecords());
    observer.disconnect();
    expect(calls).toHaveLength(1);
    expect(seen).toEqual([]);
    expect(collect(block)).toEqual(nodes);
    expect(container.children[1].textContent?.trim()).toBe(words.join(" "));
  });

  it("highlights only the code block that streams; the blocks before it stay the same nodes", () => {
    const { highlighter, calls } = counted();
    const container = document.createElement("div");
    const view = new BlockView(container, highlighter);
    const head = "Some **intro**.\n\n```js\nconst a = 1;\n```\n\n```python\n";
    const lines: string[] = [];
    view.update(head);
    const intro = collect(container.children[0]);
    const first = collect(container.children[1]);
    for (let i = 0; i < 30; i++) {
      lines.push(`print(${i})  # line ${i}`);
      view.update(`${head}${lines.join("\n")}`);
    }
    view.update(`${head}${lines.join("\n")}\n\`\`\``);
    expect(collect(container.children[0])).toEqual(intro);
    expect(collect(container.children[1])).toEqual(first);
    // The js block once, then the python one per update of its own (the fence's close changed nothing).
    expect(calls.filter((c) => c === "const a = 1;")).toHaveLength(1);
    expect(calls.length).toBeLessThanOrEqual(1 + 1 + 30);
    const whole = document.createElement("div");
    new BlockView(whole, counted().highlighter).update(`${head}${lines.join("\n")}\n\`\`\``);
    expect(container.innerHTML).toBe(whole.innerHTML);
    expect(container.querySelectorAll(".language-python .hljs-built_in").length).toBe(30);
  });

  it("shows code plain until the highlighter loads, then highlights it in place, loading it once", async () => {
    let release: (highlight: Highlight) => void = () => {};
    let imports = 0;
    const highlighter = lazyHighlighter(() => {
      imports++;
      return new Promise<Highlight>((resolve) => (release = resolve));
    });
    const a = document.createElement("div");
    const b = document.createElement("div");
    const text = "Look:\n\n```python\nimport os\n```";
    new BlockView(a, highlighter).update(text);
    new BlockView(b, highlighter).update(text);
    expect(a.querySelector("code")?.className).toBe("");
    expect(a.querySelector("code")?.textContent).toBe("import os");
    const paragraph = collect(a.children[0]);
    const pre = a.querySelector("pre");
    release(createHighlight(hljs));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(imports).toBe(1);
    for (const container of [a, b]) {
      expect(container.querySelector("code.hljs .hljs-keyword")?.textContent).toBe("import");
    }
    expect(collect(a.children[0])).toEqual(paragraph); // the paragraph was not touched
    expect(a.querySelector("pre")).toBe(pre); // the code block was patched, not rebuilt
  });

  it("tries a failed load again after a pause, not on each update, and highlights the views that wait", async () => {
    vi.useFakeTimers();
    try {
      let imports = 0;
      const highlighter = lazyHighlighter(
        () => (++imports === 1 ? Promise.reject(new Error("offline")) : Promise.resolve(createHighlight(hljs))),
        { retryMs: 1000 },
      );
      // A message that is done: its text never changes again.
      const done = document.createElement("div");
      new BlockView(done, highlighter).update("Done:\n\n```python\nimport os\n```");
      // A message that streams: it renders on every batch.
      const streaming = document.createElement("div");
      const view = new BlockView(streaming, highlighter);
      view.update("```python\nimport");
      await vi.advanceTimersByTimeAsync(0); // the import failed
      expect(imports).toBe(1);
      for (let i = 1; i <= 50; i++) view.update(`\`\`\`python\nimport${" x".repeat(i)}`);
      await vi.advanceTimersByTimeAsync(900);
      expect(imports).toBe(1); // not once per batch
      expect(done.querySelector("code")?.className).toBe("");
      await vi.advanceTimersByTimeAsync(100);
      expect(imports).toBe(2);
      for (const container of [done, streaming]) {
        expect(container.querySelector("code.hljs .hljs-keyword")?.textContent).toBe("import");
      }
    } finally {
      vi.useRealTimers();
    }
  });

  it("waits longer after each failed load, and not at all for a view that went away", async () => {
    vi.useFakeTimers();
    try {
      const times: number[] = [];
      const highlighter = lazyHighlighter(
        () => {
          times.push(Date.now());
          return Promise.reject(new Error("offline"));
        },
        { retryMs: 1000, maxRetryMs: 4000 },
      );
      const start = Date.now();
      const view = new BlockView(document.createElement("div"), highlighter);
      view.update("```js\nlet a\n```");
      await vi.advanceTimersByTimeAsync(20_000);
      expect(times.map((t) => t - start)).toEqual([0, 1000, 3000, 7000, 11000, 15000, 19000]);
      view.dispose();
      await vi.advanceTimersByTimeAsync(20_000);
      expect(times).toHaveLength(7); // nobody waits: no more tries until someone asks
      const listener = vi.fn();
      highlighter.subscribe(listener);
      highlighter.request();
      expect(times).toHaveLength(8);
      expect(listener).not.toHaveBeenCalled();
    } finally {
      vi.useRealTimers();
    }
  });

  it("keeps the language label and the copy button out of the text; an odd language is dropped", () => {
    const container = document.createElement("div");
    new BlockView(container, counted().highlighter).update('```python "><img src=x>\nx = 1\n```\n\n```Python\ny\n```');
    const [odd, named] = Array.from(container.querySelectorAll<HTMLElement>(".code-block"));
    expect(odd.dataset.lang).toBe("python");
    expect(named.dataset.lang).toBe("python");
    expect(container.querySelector("img")).toBeNull();
    expect(odd.textContent).toBe("x = 1");
    expect(codeOf(odd.querySelector("[data-copy-code]")!)).toBe("x = 1");
    expect(fenceLanguage('"><img')).toBe("");
    expect(fenceLanguage("c++ extra")).toBe("c++");
  });

  it.each(Array.from({ length: 8 }, (_, i) => i + 1))(
    "streams code like a full render, cut at random (seed %i)",
    (seed) => {
      const { highlighter } = counted();
      const text = randomCode(seed, 500);
      const streamed = document.createElement("div");
      const view = new BlockView(streamed, highlighter);
      let at = 0;
      let step = seed;
      while (at < text.length) {
        step = (step * 7 + 3) % 19;
        at = Math.min(text.length, at + 1 + step);
        view.update(text.slice(0, at));
        const whole = document.createElement("div");
        new BlockView(whole, highlighter).update(text.slice(0, at));
        expect(streamed.innerHTML, `seed ${seed} at ${at}`).toBe(whole.innerHTML);
      }
    },
  );

  function randomCode(seed: number, length: number): string {
    const pieces = [
      "```python\n",
      "```js\n",
      "```\n",
      "def f(x):\n",
      "  return 'a' + x\n",
      "const y = `t`;\n",
      "text ",
      "\n\n",
      "- item\n",
      "# h\n",
    ];
    let state = seed;
    let text = "";
    while (text.length < length) {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      text += pieces[state % pieces.length];
    }
    return text;
  }
});
