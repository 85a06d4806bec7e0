import { type Accessor, createSignal, onCleanup } from "solid-js";

/** Whether a CSS media query matches, kept up to date (false where there is no `matchMedia`). */
export function createMedia(query: string): Accessor<boolean> {
  const list = typeof window.matchMedia === "function" ? window.matchMedia(query) : null;
  const [matches, setMatches] = createSignal(list?.matches ?? false);
  const onChange = (event: MediaQueryListEvent) => setMatches(event.matches);
  list?.addEventListener("change", onChange);
  onCleanup(() => list?.removeEventListener("change", onChange));
  return matches;
}
