// Safe, incremental markdown.
//
// `renderBlocks` splits text into top-level blocks and renders each to HTML with every raw
// HTML token escaped and only http(s), mailto and relative links kept. `BlockView` keeps one
// element per block inside a container it never rebuilds: a block whose HTML did not change
// is not touched, a changed one (in practice the tail that is streaming) is patched in place,
// so the elements that already hold text stay the same nodes while a message streams.
import { Marked, type Token, type Tokens } from "marked";

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
    image({ href, text }: Tokens.Image): string {
      // Model output never loads remote images by itself: show the link instead.
      if (!safeHref(href)) return escapeHtml(text);
      return `<a href="${escapeHtml(href)}" target="_blank" rel="noopener noreferrer nofollow">${escapeHtml(text || href)}</a>`;
    },
  },
});

/** Split markdown into top-level blocks, each rendered to safe HTML. */
export function renderBlocks(text: string): Block[] {
  const tokens = marked.lexer(text);
  const blocks: Block[] = [];
  for (const token of tokens) {
    if (token.type === "space" || token.type === "def") continue;
    const one = Object.assign([token] as Token[], { links: tokens.links });
    blocks.push({ raw: token.raw, html: marked.parser(one) });
  }
  return blocks;
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

  constructor(private readonly container: HTMLElement) {}

  /** Show `text`; cheap to call on every batch of deltas. */
  update(text: string): void {
    if (text === this.text) return;
    this.text = text;
    const next = renderBlocks(text);
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
