// Copy text, in pages served over plain HTTP too (where `navigator.clipboard` does not exist: a phone
// on the LAN address), and say that it was copied: on the button for a moment (`data-copied`, drawn
// by CSS) and to a screen reader.

/** How long a button says "Copied". */
export const FLASH_MS = 1500;

/** Put `text` on the clipboard; whether it worked. */
export async function copyText(text: string): Promise<boolean> {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Refused (no permission, page not focused): try the old way.
    }
  }
  // The old way copies what is selected, and only a focused field's text can be: a textarea of its
  // own takes the focus for the copy, then gives it back (on a phone, the keyboard stays up for the
  // composer). iOS selects nothing with `select()` in a read-only field: the range selects it there.
  const active = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", ""); // no keyboard comes up for it
  area.setAttribute("aria-hidden", "true");
  area.tabIndex = -1;
  // 16px: iOS zooms the page into a smaller focused field.
  Object.assign(area.style, { position: "fixed", top: "0", left: "0", opacity: "0", fontSize: "16px" });
  document.body.append(area);
  try {
    area.focus({ preventScroll: true });
    area.select();
    area.setSelectionRange(0, text.length);
    return document.execCommand("copy");
  } catch {
    return false;
  } finally {
    area.remove();
    active?.focus({ preventScroll: true });
  }
}

/** What a button says after a copy: "yes" (copied), "no" (it failed), or null (nothing). */
export type Copied = "yes" | "no" | null;

const timers = new WeakMap<HTMLElement, ReturnType<typeof setTimeout>>();

/**
 * Show on `button` that it copied (or failed to) for a moment: `data-copied` for CSS, `onChange` for
 * a label of its own, and the words for a screen reader. A second copy before the moment ends starts
 * it again.
 */
export function flash(button: HTMLElement, ok: boolean, onChange?: (copied: Copied) => void): void {
  clearTimeout(timers.get(button));
  const copied = ok ? "yes" : "no";
  button.dataset.copied = copied;
  onChange?.(copied);
  announce(ok ? "Copied" : "Copy failed");
  timers.set(
    button,
    setTimeout(() => {
      timers.delete(button);
      delete button.dataset.copied;
      onChange?.(null);
    }, FLASH_MS),
  );
}

/** Drop a button's pending "Copied" (the button is going away). */
export function unflash(button: HTMLElement): void {
  clearTimeout(timers.get(button));
  timers.delete(button);
}

/** Copy `text` for `button` and show how it went (see `flash`); whether it worked. */
export async function copyFrom(
  button: HTMLElement,
  text: string,
  onChange?: (copied: Copied) => void,
): Promise<boolean> {
  const ok = await copyText(text);
  flash(button, ok, onChange);
  return ok;
}

// One polite live region for the whole page. It must be in the page before its words change (a
// region added with its words is not read), and the words are set after a pause so that the same
// words are read again on the next copy; they go once the moment ends.
let region: HTMLElement | null = null;
let regionTimer: ReturnType<typeof setTimeout> | undefined;

function announce(words: string): void {
  if (!region?.isConnected) {
    region = document.createElement("div");
    region.className = "sr-only";
    region.setAttribute("role", "status");
    region.setAttribute("aria-live", "polite");
    region.dataset.testid = "announce";
    document.body.append(region);
  }
  const live = region;
  live.textContent = "";
  clearTimeout(regionTimer);
  regionTimer = setTimeout(() => {
    live.textContent = words;
    regionTimer = setTimeout(() => (live.textContent = ""), FLASH_MS);
  }, 100);
}
