// Syntax highlighting for code blocks, from highlight.js 11 with a handful of common languages.
//
// Loaded on demand (a dynamic import: its own chunk), the first time a message shows a code block
// that names a language, so it costs the first paint nothing. Until it has loaded, code shows plain.
import type { HLJSApi } from "highlight.js";

/** Highlighted HTML for `code` in `lang`, or null when the language is not one registered. */
export type Highlight = (code: string, lang: string) => string | null;

/** Where a view gets its highlighter: now, if loaded, or once it loads. */
export interface Highlighter {
  /** The highlighter, if it has loaded. */
  current(): Highlight | null;
  /** Ask for it: it starts loading unless it is loading, or waiting to try again after a failure. */
  request(): void;
  /** Call `listener` once, when it has loaded (a view waiting for it renders again); returns the way to stop waiting. */
  subscribe(listener: () => void): () => void;
}

/** A highlighter over an instance of highlight.js that has its languages registered. */
export function createHighlight(hljs: HLJSApi): Highlight {
  return (code, lang) => {
    if (!lang || !hljs.getLanguage(lang)) return null;
    return hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
  };
}

async function importAll(): Promise<Highlight> {
  const { createHljs } = await import("./hljs");
  return createHighlight(createHljs());
}

/** How long to wait before trying a failed load again: `retryMs`, doubled after each failure up to `maxRetryMs`. */
export interface RetryOptions {
  retryMs?: number;
  maxRetryMs?: number;
}

/**
 * A highlighter that loads highlight.js the first time it is asked to (`importer` for tests). A load
 * that failed (offline, or a redeploy removed the chunk) is tried again after a pause that grows,
 * never on each request meanwhile (a streaming message asks on every batch), and only while a view
 * waits for it; the views that wait render again once it is in, even a message that is done.
 */
export function lazyHighlighter(
  importer: () => Promise<Highlight> = importAll,
  { retryMs = 2000, maxRetryMs = 60_000 }: RetryOptions = {},
): Highlighter {
  let loaded: Highlight | null = null;
  let loading = false;
  let failures = 0;
  let retry: ReturnType<typeof setTimeout> | undefined;
  const listeners = new Set<() => void>();
  const attempt = () => {
    if (loaded || loading || retry !== undefined) return;
    loading = true;
    importer().then(
      (highlight) => {
        loaded = highlight;
        loading = false;
        const waiting = [...listeners];
        listeners.clear();
        for (const listener of waiting) listener();
      },
      () => {
        loading = false;
        const pause = Math.min(maxRetryMs, retryMs * 2 ** failures++);
        retry = setTimeout(() => {
          retry = undefined;
          if (listeners.size > 0) attempt(); // nobody waits: the next request tries
        }, pause);
      },
    );
  };
  return {
    current: () => loaded,
    request: attempt,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** The page's highlighter: one load for every message. */
export const pageHighlighter: Highlighter = lazyHighlighter();
