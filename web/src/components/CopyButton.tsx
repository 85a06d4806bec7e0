import { createSignal, onCleanup, Show } from "solid-js";
import { type Copied, copyFrom, unflash } from "../clipboard";
import { COPY_ICON } from "../markdown";

/**
 * Copies `text()` and says so for a moment (`flash`, as the code blocks' buttons do). With no
 * `label` it is an icon only: the message's copy button adds no words to the message (its "Copied"
 * is drawn by CSS from `data-copied`, like the code blocks').
 */
export function CopyButton(props: {
  text: () => string;
  testid: string;
  title: string;
  label?: string;
  class?: string;
  /** Take the focus when its dialog opens. */
  autofocus?: boolean;
}) {
  const [copied, setCopied] = createSignal<Copied>(null);
  let button: HTMLButtonElement | undefined;
  onCleanup(() => button && unflash(button));
  return (
    <button
      ref={button}
      type="button"
      class={`copy-btn ${props.class ?? ""}`}
      data-testid={props.testid}
      data-autofocus={props.autofocus || undefined}
      aria-label={props.title}
      title={props.title}
      onClick={(event) => void copyFrom(event.currentTarget, props.text(), setCopied)}
    >
      <span class="icon" innerHTML={COPY_ICON} />
      <Show when={props.label}>
        <span>{copied() === "yes" ? "Copied" : copied() === "no" ? "Copy failed" : props.label}</span>
      </Show>
    </button>
  );
}
