import type { Conversation } from "@sessionwire/client";
import { createSignal, Show } from "solid-js";
import { createAction } from "../action";

/** The conversation's title, renamed in place: the server records it, so every tab and client sees it. */
export function Title(props: { live: Conversation; fallback: () => string | null }) {
  const [editing, setEditing] = createSignal(false);
  const rename = createAction((title: string) => props.live.rename(title));
  let input: HTMLInputElement | undefined;
  const shown = () => props.live.state.title || props.fallback() || "New conversation";
  const edit = () => {
    setEditing(true);
    input?.focus();
    input?.select();
  };
  const save = async () => {
    const title = input?.value.trim() ?? "";
    if (title && title !== props.live.state.title) await rename.run(title);
    if (!rename.error()) setEditing(false);
  };
  return (
    <Show
      when={editing()}
      fallback={
        <div class="title-row">
          <h1 data-testid="session-title">{shown()}</h1>
          <button
            class="btn small ghost icon"
            data-testid="rename"
            aria-label="Rename the conversation"
            title="Rename"
            onClick={edit}
          >
            ✎
          </button>
        </div>
      }
    >
      <form
        class="title-row"
        onSubmit={(event) => {
          event.preventDefault();
          void save();
        }}
      >
        <input
          ref={input}
          class="title-input"
          data-testid="rename-input"
          aria-label="Title"
          maxLength={500}
          value={shown()}
          onKeyDown={(event) => {
            if (event.key !== "Escape") return;
            event.preventDefault(); // ends the edit, stops no turn
            setEditing(false);
          }}
        />
        <button class="btn small primary" data-testid="rename-save" disabled={rename.busy()}>
          Save
        </button>
        <Show when={rename.error()}>
          <span class="error" role="alert" data-testid="rename-error">
            {rename.error()}
          </span>
        </Show>
      </form>
    </Show>
  );
}
