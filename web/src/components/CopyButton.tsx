import { createSignal, onCleanup, Show } from "solid-js";
import { copyText } from "../clipboard";
import { COPY_ICON } from "../markdown";

/**
 * Copies `text()` and says so for a moment. With no `label` it is an icon only: the message's copy
 * button adds no words to the message (its "Copied" is drawn by CSS, like the code blocks').
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
  const [copied, setCopied] = createSignal<"" | "yes" | "no">("");
  let timer: ReturnType<typeof setTimeout> | undefined;
  onCleanup(() => clearTimeout(timer));
  const copy = async () => {
    const ok = await copyText(props.text());
    setCopied(ok ? "yes" : "no");
    clearTimeout(timer);
    timer = setTimeout(() => setCopied(""), 1500);
  };
  return (
    <button
      type="button"
      class={`copy-btn ${props.class ?? ""}`}
      data-testid={props.testid}
      data-copied={copied() || undefined}
      data-autofocus={props.autofocus || undefined}
      aria-label={props.title}
      title={props.title}
      onClick={() => void copy()}
    >
      <span class="icon" innerHTML={COPY_ICON} />
      <Show when={props.label}>
        <span>{copied() === "yes" ? "Copied" : copied() === "no" ? "Copy failed" : props.label}</span>
      </Show>
    </button>
  );
}
