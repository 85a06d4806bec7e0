// Safe, incremental markdown.
//
// `renderBlocks` splits text into top-level blocks and renders each to HTML with every raw
// HTML token escaped and only http(s), mailto and relative links kept. `BlockView` keeps one
// element per block inside a container it never rebuilds: a block whose HTML did not change
// is not touched, a changed one (in practice the tail that is streaming) is patched in place,
// so the elements that already hold text stay the same nodes while a message streams.
//
// A code block gets a bar with its language and a copy button, and is highlighted once a
// highlighter has loaded (see highlight.ts). Each view remembers the highlighted HTML of its code
// blocks: only a code block whose source changed is highlighted again, so a block that is done is
// neither re-highlighted nor patched while the text after it streams.
import { Marked, type Token, type Tokens } from "marked";
import type { Highlight, Highlighter } from "./highlight";

export interface Block {
  /** The block's markdown source. */
  raw: string;
  /** Its rendered, safe HTML. */
  html: string;
}

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escape text for HTML. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** Whether a link target is safe to put in an href (no javascript:, data:, vbscript: ...). */
export function safeHref(href: string): boolean {
  const trimmed = href
    .trim()
    .toLowerCase()
    .replace(/[\u0000-\u001f\s]/g, "");
  const scheme = /^([a-z][a-z0-9+.-]*):/.exec(trimmed);
  return scheme === null || ["http", "https", "mailto"].includes(scheme[1]);
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    html({ text }: Tokens.HTML | Tokens.Tag): string {
      return escapeHtml(text);
    },
    link({ href, title, tokens }: Tokens.Link): string {
      const text = this.parser.parseInline(tokens);
      if (!safeHref(href)) return text;
      const t = title ? ` title="${escapeHtml(title)}"` : "";
      return `<a href="${escapeHtml(href)}"${t} target="_blank" rel="noopener noreferrer nofollow">${text}</a>`;
    },
    code(token: Tokens.Code): string {
      return codeBlock(token);
    },
    image({ href, text }: Tokens.Image): string {
      // Model output never loads remote images by itself: show the link instead.
      if (!safeHref(href)) return escapeHtml(text);
      return `<a href="${escapeHtml(href)}" target="_blank" rel="noopener noreferrer nofollow">${escapeHtml(text || href)}</a>`;
    },
  },
});

/** A code token with the highlighted HTML of its text, when there is one. */
type CodeToken = Tokens.Code & { highlighted?: string };

/** The copy icon of every copy button. */
export const COPY_ICON =
  '<svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true"><path fill="currentColor" d="M5 1.5A1.5 ' +
  "1.5 0 0 1 6.5 0h7A1.5 1.5 0 0 1 15 1.5v9a1.5 1.5 0 0 1-1.5 1.5H12v-1.5h1.5v-9h-7V3H5zM1 5.5A1.5 1.5 0 0 1 " +
  '2.5 4h7A1.5 1.5 0 0 1 11 5.5v9A1.5 1.5 0 0 1 9.5 16h-7A1.5 1.5 0 0 1 1 14.5zm1.5 0v9h7v-9z"/></svg>';

/** The language a fence names (its first word), kept only if it is a plain name: it goes into attributes. */
export function fenceLanguage(lang: string | undefined): string {
  const word = (lang ?? "").trim().split(/\s+/)[0] ?? "";
  return /^[A-Za-z0-9_+#.-]{1,32}$/.test(word) ? word.toLowerCase() : "";
}

// A code block: a bar with its language (drawn from `data-lang` by CSS, so the label is not part of
// the message's text when it is selected or read) and a copy button, then the code.
function codeBlock(token: CodeToken): string {
  const lang = fenceLanguage(token.lang);
  const text = token.text.replace(/\n$/, "");
  const body = token.highlighted ?? escapeHtml(text);
  const cls = token.highlighted !== undefined ? ` class="hljs language-${lang}"` : "";
  return (
    `<div class="code-block" data-lang="${lang}"><div class="code-bar"><span class="code-lang" data-lang="${lang}"></span>` +
    `<button type="button" class="copy-code" data-copy-code data-testid="copy-code" aria-label="Copy code"` +
    ` title="Copy code">${COPY_ICON}</button></div><pre><code${cls}>${body}</code></pre></div>`
  );
}

/** Split markdown into top-level blocks, each rendered to safe HTML (code highlighted by `highlight`, if given). */
export function renderBlocks(text: string, highlight: Highlight | null = null): Block[] {
  const tokens = marked.lexer(text);
  const blocks: Block[] = [];
  for (const token of tokens) {
    if (token.type === "space" || token.type === "def") continue;
    const one = Object.assign([token] as Token[], { links: tokens.links });
    if (highlight) {
      marked.walkTokens(one, (t) => {
        if (t.type !== "code") return;
        const code = t as CodeToken;
        const html = highlight(code.text.replace(/\n$/, ""), fenceLanguage(code.lang));
        if (html !== null) code.highlighted = html;
      });
    }
    blocks.push({ raw: token.raw, html: marked.parser(one) });
  }
  return blocks;
}

/** The code of the code block a copy button belongs to. */
export function codeOf(button: Element): string {
  return button.closest(".code-block")?.querySelector("code")?.textContent ?? "";
}

/**
 * Renders markdown into `container`, patching only the blocks whose rendering changed.
 *
 * Every update lexes the whole text: markdown is not local (a line can turn the paragraph above
 * it into a list item or a heading), so only a full lex is sure to render what a fresh page would.
 */
export class BlockView {
  private blocks: { html: string; el: HTMLElement }[] = [];
  private text = "";
  /** The code blocks of the last render, in order, with their highlighted HTML. */
  private codes: { lang: string; code: string; html: string | null }[] = [];
  /** Stops waiting for the highlighter, while this view waits for it. */
  private waiting: (() => void) | null = null;

  /** `highlighter`: where to get a highlighter; code shows plain until it has one. */
  constructor(
    private readonly container: HTMLElement,
    private readonly highlighter: Highlighter | null = null,
  ) {}

  /** Show `text`; cheap to call on every batch of deltas. */
  update(text: string): void {
    if (text === this.text) return;
    this.text = text;
    this.render();
  }

  private render(): void {
    const next = renderBlocks(this.text, this.highlight());
    next.forEach((block, i) => {
      // By its HTML, not its source: a block's rendering can change while its source does not
      // (a reference definition further down, or how marked ends a paragraph before what follows).
      const have = this.blocks[i];
      if (have && have.html === block.html) return;
      if (have) {
        morphChildren(have.el, fragment(block.html));
        have.html = block.html;
      } else {
        const el = document.createElement("div");
        el.className = "md-block";
        el.append(fragment(block.html));
        this.container.append(el);
        this.blocks.push({ html: block.html, el });
      }
    });
    for (const gone of this.blocks.splice(next.length)) gone.el.remove();
  }

  // The highlighter for one render: a code block whose language and source are those of the same
  // code block last time gets the HTML it got then. Until the highlighter has loaded, code stays
  // plain: the first code block with a language asks for it, and the text renders again once it is in.
  private highlight(): Highlight | null {
    if (!this.highlighter) return null;
    const highlight = this.highlighter.current();
    const before = this.codes;
    const now: typeof this.codes = [];
    this.codes = now;
    return (code, lang) => {
      if (!lang) return null;
      if (!highlight) {
        this.ask();
        return null;
      }
      const same = before[now.length];
      const html = same && same.lang === lang && same.code === code ? same.html : highlight(code, lang);
      now.push({ lang, code, html });
      return html;
    };
  }

  // Wait for the highlighter: this view renders again once it has loaded, however long that takes
  // (a load that failed is tried again later), even if its text never changes again.
  private ask(): void {
    if (this.waiting || !this.highlighter) return;
    this.waiting = this.highlighter.subscribe(() => {
      this.waiting = null;
      this.render();
    });
    this.highlighter.request();
  }

  /** Stop waiting for the highlighter (the view is going away). */
  dispose(): void {
    this.waiting?.();
    this.waiting = null;
  }
}

function fragment(html: string): DocumentFragment {
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content;
}

// Make `live`'s children look like `next`'s, keeping every node whose type and tag still match.
function morphChildren(live: Node, next: Node): void {
  const have = Array.from(live.childNodes);
  const want = Array.from(next.childNodes);
  want.forEach((node, i) => {
    const old = have[i];
    if (!old) {
      live.appendChild(node);
    } else if (old.nodeType !== node.nodeType || old.nodeName !== node.nodeName) {
      live.replaceChild(node, old);
    } else if (old.nodeType === Node.TEXT_NODE || old.nodeType === Node.COMMENT_NODE) {
      const text = (node as CharacterData).data;
      if ((old as CharacterData).data !== text) (old as CharacterData).data = text;
    } else {
      syncAttributes(old as Element, node as Element);
      morphChildren(old, node);
    }
  });
  for (const extra of have.slice(want.length)) live.removeChild(extra);
}

function syncAttributes(live: Element, next: Element): void {
  for (const { name } of Array.from(live.attributes)) {
    if (!next.hasAttribute(name)) live.removeAttribute(name);
  }
  for (const { name, value } of Array.from(next.attributes)) {
    if (live.getAttribute(name) !== value) live.setAttribute(name, value);
  }
}
