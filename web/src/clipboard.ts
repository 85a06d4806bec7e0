// Copy text, in pages served over plain HTTP too (where `navigator.clipboard` does not exist).

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
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  try {
    return document.execCommand("copy");
  } catch {
    return false;
  } finally {
    area.remove();
  }
}

/** Mark `button` as having copied (for CSS) for a moment. */
export function flash(button: HTMLElement, ok: boolean): void {
  button.dataset.copied = ok ? "yes" : "no";
  setTimeout(() => delete button.dataset.copied, 1500);
}
