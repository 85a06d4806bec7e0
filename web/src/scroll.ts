import { createEffect, onCleanup } from "solid-js";

/** Keep `el` scrolled to its end as content grows, unless the user scrolled up to read. */
export function stickToBottom(el: HTMLElement, changed: () => unknown): void {
  let stick = true;
  const onScroll = () => {
    stick = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  };
  el.addEventListener("scroll", onScroll, { passive: true });
  onCleanup(() => el.removeEventListener("scroll", onScroll));
  createEffect(() => {
    changed();
    if (stick) queueMicrotask(() => (el.scrollTop = el.scrollHeight));
  });
}
