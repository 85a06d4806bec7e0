import { createEffect, onCleanup } from "solid-js";
import { copyFrom } from "../clipboard";
import { pageHighlighter } from "../highlight";
import { BlockView, codeOf } from "../markdown";

/** Markdown in a container that is never rebuilt: only the blocks that change are patched. */
export function Markdown(props: { text: string; testid?: string; class?: string }) {
  const attach = (el: HTMLDivElement) => {
    const view = new BlockView(el, pageHighlighter);
    createEffect(() => view.update(props.text));
    onCleanup(() => view.dispose());
  };
  // The code blocks' copy buttons are in the rendered HTML: one listener for all of them.
  const onClick = (event: MouseEvent) => {
    const button = (event.target as Element).closest<HTMLElement>("[data-copy-code]");
    if (button) void copyFrom(button, codeOf(button));
  };
  return (
    <div
      class={`md ${props.class ?? ""}`}
      data-testid={props.testid ?? "message-text"}
      ref={attach}
      onClick={onClick}
    />
  );
}
