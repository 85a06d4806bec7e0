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
  /** Load it (once); resolves when `current()` returns it. */
  load(): Promise<Highlight>;
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

/** A highlighter that loads highlight.js the first time it is asked to (`importer` for tests). */
export function lazyHighlighter(importer: () => Promise<Highlight> = importAll): Highlighter {
  let loaded: Highlight | null = null;
  let loading: Promise<Highlight> | null = null;
  return {
    current: () => loaded,
    load() {
      loading ??= importer().then(
        (highlight) => (loaded = highlight),
        (error: unknown) => {
          loading = null; // a chunk that failed to load (a redeploy, say) is tried again next time
          throw error;
        },
      );
      return loading;
    },
  };
}

/** The page's highlighter: one load for every message. */
export const pageHighlighter: Highlighter = lazyHighlighter();
