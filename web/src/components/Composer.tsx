import { createSignal, onMount } from "solid-js";
import { ApiError } from "@sessionwire/client";
import type { Conversation } from "@sessionwire/client";

/** Sends a turn (or starts a job); says why the server refused one. */
export function Composer(props: {
  live: Conversation;
  /** Send the text as a turn (the session view shows it as queued until its turn starts). */
  send: (text: string) => Promise<unknown>;
  disabled?: boolean;
  /** Take the keyboard's focus once shown (a conversation just created). */
  autofocus?: boolean;
}) {
  const [text, setText] = createSignal("");
  const [notice, setNotice] = createSignal("");
  const [kind, setKind] = createSignal<"info" | "error">("info");
  const [busy, setBusy] = createSignal(false);
  let input: HTMLTextAreaElement | undefined;
  onMount(() => props.autofocus && input?.focus());

  const say = (message: string, level: "info" | "error" = "info") => {
    setKind(level);
    setNotice(message);
  };

  const send = async (asJob: boolean) => {
    const value = text().trim();
    if (!value || busy() || props.disabled) return;
    setBusy(true);
    try {
      if (asJob) {
        const title = value.length > 48 ? `${value.slice(0, 47)}…` : value;
        await props.live.startJob(title, value);
        say(`Started the background job “${title}”.`);
      } else {
        await props.send(value);
        say("");
      }
      setText("");
    } catch (exc) {
      if (exc instanceof ApiError && exc.code === "turn_rejected") {
        say(`Not sent: a turn is still running and this server rejects new turns meanwhile (${exc.message}).`, "error");
      } else {
        say(exc instanceof Error ? exc.message : String(exc), "error");
      }
    } finally {
      setBusy(false);
    }
  };

  // On a touch screen Enter is a new line (the keyboard has no Shift to hold); Send sends.
  const enterSends = () => !window.matchMedia?.("(pointer: coarse)").matches;

  return (
    <form
      class="composer"
      data-testid="composer"
      onSubmit={(e) => {
        e.preventDefault();
        void send(false);
      }}
    >
      <div class={`composer-notice ${kind()}`} data-testid="composer-notice" role="status" hidden={!notice()}>
        {notice()}
      </div>
      <div class="composer-row">
        <textarea
          ref={input}
          data-testid="composer-input"
          aria-label="Message"
          disabled={props.disabled}
          placeholder="Message the agent…"
          rows={2}
          value={text()}
          onInput={(e) => setText(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey && !e.isComposing && enterSends()) {
              e.preventDefault();
              void send(false);
            }
          }}
        />
        <div class="composer-buttons">
          <button
            class="btn primary"
            type="submit"
            data-testid="send"
            disabled={props.disabled || busy() || !text().trim()}
          >
            Send
          </button>
          <button
            class="btn"
            type="button"
            data-testid="start-job"
            title="Run this prompt as a background job"
            disabled={props.disabled || busy() || !text().trim()}
            onClick={() => void send(true)}
          >
            Job
          </button>
        </div>
      </div>
      <div class="composer-hint muted">Enter sends · Shift+Enter new line · Esc stops the running turn</div>
    </form>
  );
}
