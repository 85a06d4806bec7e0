import { createEffect, createSignal } from "solid-js";
import { ApiError } from "@sessionwire/client";
import type { Conversation } from "@sessionwire/client";

/** Sends a turn (or starts a job); says what the server did when a turn was already running. */
export function Composer(props: { live: Conversation; onSent?: (text: string) => void; disabled?: boolean }) {
  const [text, setText] = createSignal("");
  const [notice, setNotice] = createSignal("");
  const [kind, setKind] = createSignal<"info" | "error">("info");
  const [busy, setBusy] = createSignal(false);
  // The turn the notice is about (queued or interrupting): the notice goes once that turn starts or ends.
  const [about, setAbout] = createSignal<string | null>(null);
  const running = () => Object.values(props.live.state.turns).some((t) => t && t.status === "running");

  const say = (message: string, level: "info" | "error" = "info", turn: string | null = null) => {
    setKind(level);
    setNotice(message);
    setAbout(turn);
  };
  createEffect(() => {
    const turn = about();
    if (turn !== null && props.live.state.turns[turn]) say("");
  });

  const send = async (asJob: boolean) => {
    const value = text().trim();
    if (!value || busy() || props.disabled) return;
    setBusy(true);
    const wasRunning = running();
    try {
      if (asJob) {
        const title = value.length > 48 ? `${value.slice(0, 47)}…` : value;
        const answer = await props.live.startJob(title, value);
        say(`Started job ${answer.job}.`);
      } else {
        const answer = await props.live.sendTurn(value);
        if (wasRunning) say(whileRunning(answer.turn, answer.policy), "info", answer.turn);
        else say("");
        props.onSent?.(value);
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
          data-testid="composer-input"
          aria-label="Message"
          disabled={props.disabled}
          placeholder="Message the agent…  (Enter to send, Shift+Enter for a new line)"
          rows={2}
          value={text()}
          onInput={(e) => setText(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
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
    </form>
  );
}

/** What happened to a turn sent while another was running, as far as the server said. */
function whileRunning(turn: string, policy: string | undefined): string {
  if (policy === "queue") return `Queued: turn ${turn} starts when the running turn ends.`;
  if (policy === "interrupt") return `Turn ${turn} stops the running turn and starts next.`;
  return `Sent while a turn was running: turn ${turn} follows the server's policy (queued or interrupting).`;
}
