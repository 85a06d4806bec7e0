import { type Accessor, createSignal, onCleanup } from "solid-js";

/** Below this width the conversations are a drawer over the page (styles.css agrees). */
export const NARROW = "(max-width: 700px)";
/** Below this width the jobs are a sheet over the conversation, behind the header's Jobs button (styles.css agrees). */
export const SHEET = "(max-width: 1000px)";

/** Whether a CSS media query matches, kept up to date (false where there is no `matchMedia`). */
export function createMedia(query: string): Accessor<boolean> {
  const list = typeof window.matchMedia === "function" ? window.matchMedia(query) : null;
  const [matches, setMatches] = createSignal(list?.matches ?? false);
  const onChange = (event: MediaQueryListEvent) => setMatches(event.matches);
  list?.addEventListener("change", onChange);
  onCleanup(() => list?.removeEventListener("change", onChange));
  return matches;
}
