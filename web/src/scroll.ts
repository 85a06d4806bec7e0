import { type Accessor, createEffect, createSignal, onCleanup } from "solid-js";

/** What `stickToBottom` tells: whether the view follows its end, and a way back to it. */
export interface Stick {
  /** Whether the view is at (or near) its end, so it follows what comes. */
  atBottom: Accessor<boolean>;
  /** Scroll to the end, and follow it again. */
  toBottom(): void;
}

/** Keep `el` scrolled to its end as content grows, unless the user scrolled up to read. */
export function stickToBottom(el: HTMLElement, changed: () => unknown): Stick {
  const [atBottom, setAtBottom] = createSignal(true);
  const onScroll = () => {
    setAtBottom(el.scrollHeight - el.scrollTop - el.clientHeight < 80);
  };
  el.addEventListener("scroll", onScroll, { passive: true });
  onCleanup(() => el.removeEventListener("scroll", onScroll));
  createEffect(() => {
    changed();
    if (atBottom()) queueMicrotask(() => (el.scrollTop = el.scrollHeight));
  });
  return {
    atBottom,
    toBottom() {
      setAtBottom(true);
      el.scrollTop = el.scrollHeight;
    },
  };
}
