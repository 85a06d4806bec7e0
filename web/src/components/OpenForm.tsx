import { createSignal, onMount } from "solid-js";
import { parseTarget, type Target } from "../share";

/** Open a conversation from a link, or from its id and token (a conversation another browser or the CLI created). */
export function OpenForm(props: { id?: string; onOpen: (target: Target) => void; autofocus?: boolean }) {
  const [error, setError] = createSignal("");
  let target: HTMLInputElement | undefined;
  let token: HTMLInputElement | undefined;
  onMount(() => props.autofocus && (props.id ? token : target)?.focus());
  const submit = () => {
    const parsed = parseTarget(target?.value ?? "", token?.value ?? "", location.href);
    if ("error" in parsed) setError(parsed.error);
    else {
      setError("");
      props.onOpen(parsed);
    }
  };
  return (
    <form
      class="open-form"
      data-testid="open-form"
      onSubmit={(event) => {
        event.preventDefault();
        submit();
      }}
    >
      <label>
        <span>Link or conversation id</span>
        <input
          ref={target}
          data-testid="open-target"
          value={props.id ?? ""}
          placeholder="…/#/s/ID?token=… or an id"
          autocomplete="off"
          spellcheck={false}
        />
      </label>
      <label>
        <span>Token (if the link has none)</span>
        <input ref={token} data-testid="open-token" autocomplete="off" spellcheck={false} />
      </label>
      <div class="open-row">
        <span class="inline-error" data-testid="open-error" role="alert" hidden={!error()}>
          {error()}
        </span>
        <span class="spacer" />
        <button class="btn primary" data-testid="open-submit">
          Open
        </button>
      </div>
    </form>
  );
}
