import { type JSX, onCleanup, onMount } from "solid-js";

const FOCUSABLE = "a[href], button, input, textarea, select, [tabindex]:not([tabindex='-1'])";

/**
 * A modal dialog: Esc (wherever the focus is), the close button or a click beside it closes it. It
 * focuses `[data-autofocus]`, else its first field; Tab and Shift+Tab go round its controls, never
 * to the page behind it; once closed, the focus goes back to what had it.
 */
export function Dialog(props: { title: string; testid: string; onClose: () => void; children: JSX.Element }) {
  let box: HTMLDivElement | undefined;
  const opener = document.activeElement as HTMLElement | null; // gets the focus back once it closes
  const onKey = (event: KeyboardEvent) => {
    if (event.defaultPrevented || !box) return;
    if (event.key === "Escape") {
      if (event.isComposing || event.keyCode === 229) return; // an IME's Esc, for its own text
      event.preventDefault(); // closes this, stops no turn
      props.onClose();
    } else if (event.key === "Tab") {
      const controls = Array.from(box.querySelectorAll<HTMLElement>(FOCUSABLE)).filter(
        (el) => !(el as HTMLButtonElement).disabled && el.getClientRects().length > 0,
      );
      const first = controls[0];
      const last = controls[controls.length - 1];
      const at = document.activeElement;
      const inside = !!at && box.contains(at);
      if (!first) {
        event.preventDefault();
        box.focus();
      } else if (event.shiftKey && (!inside || at === first || at === box)) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (!inside || at === last)) {
        event.preventDefault();
        first.focus();
      }
    }
  };
  onMount(() => {
    window.addEventListener("keydown", onKey);
    const first =
      box?.querySelector<HTMLElement>("[data-autofocus]") ?? box?.querySelector<HTMLElement>("input, textarea");
    (first ?? box)?.focus();
  });
  onCleanup(() => {
    window.removeEventListener("keydown", onKey);
    if (opener?.isConnected) opener.focus();
  });
  return (
    <div class="dialog-backdrop" onClick={(event) => event.target === event.currentTarget && props.onClose()}>
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
          <button
            type="button"
            class="btn small ghost dialog-close"
            data-testid="dialog-close"
            aria-label="Close"
            onClick={() => props.onClose()}
          >
            ✕
          </button>
        </header>
        {props.children}
      </div>
    </div>
  );
}
