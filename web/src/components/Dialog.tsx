import { type JSX, onCleanup, onMount } from "solid-js";

/**
 * A modal dialog: Esc, the close button or a click beside it closes it. It focuses `[data-autofocus]`,
 * else its first field, and gives the focus back to what had it.
 */
export function Dialog(props: { title: string; testid: string; onClose: () => void; children: JSX.Element }) {
  let box: HTMLDivElement | undefined;
  const opener = document.activeElement as HTMLElement | null; // gets the focus back once it closes
  onCleanup(() => opener?.isConnected && opener.focus());
  onMount(() => {
    const first =
      box?.querySelector<HTMLElement>("[data-autofocus]") ?? box?.querySelector<HTMLElement>("input, textarea");
    (first ?? box)?.focus();
  });
  return (
    <div
      class="dialog-backdrop"
      onClick={(event) => event.target === event.currentTarget && props.onClose()}
      onKeyDown={(event) => {
        if (event.key === "Escape") {
          event.preventDefault(); // closes this, stops no turn
          props.onClose();
        }
      }}
    >
      <div
        ref={box}
        class="dialog"
        role="dialog"
        aria-modal="true"
        aria-label={props.title}
        data-testid={props.testid}
        tabIndex={-1}
      >
        <header class="dialog-head">
          <h2>{props.title}</h2>
          <button type="button" class="btn small ghost dialog-close" aria-label="Close" onClick={() => props.onClose()}>
            ✕
          </button>
        </header>
        {props.children}
      </div>
    </div>
  );
}
