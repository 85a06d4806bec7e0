import { createEffect, createMemo, createSignal, For } from "solid-js";
import { createAction } from "../action";
import type { Conversation } from "@sessionwire/client";
import type { Pending, PendingTurn } from "../pending";
import { type Stick, stickToBottom } from "../scroll";
import { ApprovalCard } from "./Approval";
import { MessageView, messageText } from "./Message";

const TURN_LABEL: Record<string, string> = { running: "streaming" };

/**
 * The conversation: turns in order, each with its messages, approvals, errors and state; then the
 * messages this tab sent whose turn has not started; a button back to the latest when scrolled up.
 */
export function Transcript(props: {
  live: Conversation;
  by: () => string;
  /** Sends a turn (Retry uses it); without it, no Retry. */
  send?: (text: string) => Promise<unknown>;
  /** The messages this tab sent that wait for their turn. */
  pending?: Pending;
}) {
  const state = props.live.state;
  const [stick, setStick] = createSignal<Stick | null>(null);
  const lastTurn = createMemo(() => {
    const ids = Object.keys(state.turns);
    return ids[ids.length - 1] ?? null;
  });
  // A message shown as queued goes once its turn is in the log (the turn shows it from then on).
  createEffect(() => props.pending?.prune((turn) => !!state.turns[turn]));
  const waiting = () => props.pending?.items() ?? [];
  // Entry keys in conversation order: "t:<turn>" for a turn block, "m:<message>" for a message
  // outside any turn. Messages of jobs are shown in their job's card.
  const entries = createMemo(() => {
    const out: string[] = [];
    const turns = Object.keys(state.turns);
    const position = new Map(turns.map((id, i) => [id, i]));
    let next = 0;
    const upTo = (i: number) => {
      for (; next <= i; next++) out.push(`t:${turns[next]}`);
    };
    for (const id of state.message_order) {
      const message = state.messages[id];
      if (!message || message.job) continue;
      if (message.turn && position.has(message.turn)) upTo(position.get(message.turn) as number);
      else if (!message.turn) out.push(`m:${id}`);
    }
    upTo(turns.length - 1);
    return out;
  });
  const calls = createMemo(() => {
    const out = new Set<string>();
    for (const message of Object.values(state.messages)) {
      for (const part of message?.parts ?? []) if (part.kind === "tool") out.add(part.call);
    }
    return out;
  });
  const loose = createMemo(() => ({
    approvals: Object.values(state.approvals)
      .filter((a) => a && !a.turn && !a.job && !(a.call && calls().has(a.call)))
      .map((a) => a.id),
    errors: state.errors.filter((e) => !e.turn && !e.job),
  }));

  return (
    <div class="transcript">
      <div
        class="conversation"
        data-testid="conversation"
        ref={(el) => setStick(stickToBottom(el, () => [state.seq, waiting().length]))}
      >
        <div class="conversation-inner">
          <div class="empty" hidden={entries().length > 0 || state.seq === 0}>
            <h2>Say something</h2>
            <p>
              Try <code>/long 200</code>, <code>/think</code>, <code>/tool add {'{"a": 2, "b": 3}'}</code>,{" "}
              <code>/job 100 Count</code> or <code>/approve deploy</code>.
            </p>
          </div>
          <For each={entries()}>
            {(key) =>
              key.startsWith("t:") ? (
                <TurnView
                  live={props.live}
                  id={key.slice(2)}
                  by={props.by}
                  retry={props.send && lastTurn() === key.slice(2) && waiting().length === 0 ? props.send : undefined}
                />
              ) : (
                <MessageView message={state.messages[key.slice(2)]} />
              )
            }
          </For>
          <For each={loose().approvals}>
            {(id) => (
              <ApprovalCard
                approval={state.approvals[id]}
                resolve={(d) => props.live.resolveApproval(id, d, props.by())}
              />
            )}
          </For>
          <For each={loose().errors}>
            {(e) => (
              <div class="error-line" data-testid="error">
                {e.error}
              </div>
            )}
          </For>
          <For each={waiting()}>{(p) => <PendingView live={props.live} pending={p} />}</For>
        </div>
      </div>
      <button
        type="button"
        class="btn jump-latest"
        data-testid="jump-latest"
        hidden={stick()?.atBottom() ?? true}
        onClick={() => stick()?.toBottom()}
      >
        ↓ Jump to latest
      </button>
    </div>
  );
}

/** A message sent from this tab whose turn has not started: queued behind the running one, say. */
function PendingView(props: { live: Conversation; pending: PendingTurn }) {
  const running = () => Object.values(props.live.state.turns).some((t) => t && t.status === "running");
  const label = () => {
    if (props.pending.policy === "interrupt") return "Next: it stops the running turn";
    return running() ? "Queued: starts when the running turn ends" : "Starting…";
  };
  const cancel = createAction(() => props.live.cancelTurn(props.pending.turn));
  return (
    <article class="message user pending" data-testid="queued-message" data-turn-id={props.pending.turn}>
      <div class="bubble">
        <div class="plain">{props.pending.text}</div>
      </div>
      <div class="pending-meta">
        <span class="badge pending" data-testid="queued-status">
          {label()}
        </span>
        <button
          class="btn small ghost"
          data-testid="queued-cancel"
          aria-label="Cancel this queued message"
          disabled={cancel.busy()}
          onClick={() => void cancel.run()}
        >
          Cancel
        </button>
      </div>
      <div class="inline-error" role="alert" hidden={!cancel.error()}>
        {cancel.error()}
      </div>
    </article>
  );
}

/** One turn: its messages, approvals and errors, and a footer with its state and Stop (or Retry). */
function TurnView(props: {
  live: Conversation;
  id: string;
  by: () => string;
  /** Given on the last turn: Retry sends its user's text again once it failed or was interrupted. */
  retry?: (text: string) => Promise<unknown>;
}) {
  const state = props.live.state;
  const turn = () => state.turns[props.id];
  // Approvals of this turn not shown with their tool call (in a message of this turn).
  const approvals = createMemo(() => {
    const calls = new Set<string>();
    for (const id of turn().messages) {
      for (const part of state.messages[id]?.parts ?? []) if (part.kind === "tool") calls.add(part.call);
    }
    return Object.values(state.approvals)
      .filter((a) => a && a.turn === props.id && !a.job && !(a.call && calls.has(a.call)))
      .map((a) => a.id);
  });
  const errors = createMemo(() => state.errors.filter((e) => e.turn === props.id && !e.job));
  const detail = () => {
    const t = turn();
    if (t.status === "failed") return t.error ?? "failed";
    if (t.status === "cancelled" || t.status === "interrupted") return t.reason ?? "";
    if (t.status === "completed" && t.usage) return `${t.model ?? ""} · ${t.usage.output_tokens} tokens out`;
    if (t.status === "running" && state.status && state.status.turn === props.id) return state.status.text;
    return "";
  };
  const label = () => {
    const status = turn().status;
    const waiting = Object.values(state.approvals).some((a) => a && a.turn === props.id && a.status === "pending");
    if (status === "running" && waiting) return "waiting for approval";
    return TURN_LABEL[status] ?? status;
  };
  const stop = createAction(() => props.live.cancelTurn(props.id));
  const asked = () => {
    for (const id of turn().messages) {
      const message = state.messages[id];
      if (message?.role === "user") return messageText(message);
    }
    return "";
  };
  const retry = createAction((text: string) => props.retry?.(text) ?? Promise.resolve());
  const canRetry = () => !!props.retry && ["failed", "interrupted"].includes(turn().status) && !!asked();
  return (
    <section class="turn" data-testid="turn" data-turn-id={props.id} data-status={turn().status}>
      <For each={turn().messages}>{(id) => <MessageView message={state.messages[id]} />}</For>
      <For each={approvals()}>
        {(id) => (
          <ApprovalCard approval={state.approvals[id]} resolve={(d) => props.live.resolveApproval(id, d, props.by())} />
        )}
      </For>
      <For each={errors()}>
        {(e) => (
          <div class="error-line" data-testid="error">
            {e.error}
          </div>
        )}
      </For>
      <footer class="turn-foot">
        <span class={`badge ${turn().status}`} data-testid="turn-status">
          {label()}
        </span>
        <span class={`turn-detail ${turn().status}`} data-testid="turn-detail">
          {detail()}
        </span>
        <span class="spacer" />
        <button
          class="btn stop"
          data-testid="stop"
          aria-label="Stop this turn"
          aria-keyshortcuts="Escape"
          title="Stop (Esc)"
          hidden={turn().status !== "running"}
          disabled={stop.busy()}
          onClick={() => void stop.run()}
        >
          ■ Stop
        </button>
        <button
          class="btn small"
          data-testid="retry"
          title="Send the same message again"
          hidden={!canRetry()}
          disabled={retry.busy()}
          onClick={() => void retry.run(asked())}
        >
          ↻ Retry
        </button>
      </footer>
      <div class="inline-error" data-testid="stop-error" role="alert" hidden={!stop.error()}>
        {stop.error()}
      </div>
      <div class="inline-error" data-testid="retry-error" role="alert" hidden={!retry.error()}>
        {retry.error()}
      </div>
    </section>
  );
}
