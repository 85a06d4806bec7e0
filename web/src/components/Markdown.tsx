import { createEffect } from "solid-js";
import { BlockView } from "../markdown";

/** Markdown in a container that is never rebuilt: only the blocks that change are patched. */
export function Markdown(props: { text: string; testid?: string; class?: string }) {
  const attach = (el: HTMLDivElement) => {
    const view = new BlockView(el);
    createEffect(() => view.update(props.text));
  };
  return <div class={`md ${props.class ?? ""}`} data-testid={props.testid ?? "message-text"} ref={attach} />;
}
