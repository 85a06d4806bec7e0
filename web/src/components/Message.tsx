import { createMemo, For, Index, Match, Switch } from "solid-js";
import { useSession } from "../context";
import type { MessageState, PartState, ToolPartState } from "@sessionwire/client";
import { ApprovalCard } from "./Approval";
import { CopyButton } from "./CopyButton";
import { Markdown } from "./Markdown";

/** A message's text (its text parts), as copied. */
export function messageText(message: MessageState): string {
  return message.parts
    .filter((part) => part.kind === "text")
    .map((part) => (part as { text: string }).text)
    .join("\n\n");
}

/** One message: its parts by index (text, reasoning, tool calls), updated in place, and a copy button. */
export function MessageView(props: { message: MessageState }) {
  const m = () => props.message;
  const text = () => messageText(m());
  // Whether there is text to copy, without joining it all on every streamed batch.
  const hasText = () => m().parts.some((part) => part.kind === "text" && !!(part as { text: string }).text);
  return (
    <article
      class={`message ${m().role}`}
      data-testid="message"
      data-message-id={m().id}
      data-role={m().role}
      data-status={m().status}
    >
      <div class="bubble">
        <Index each={m().parts}>
          {(part) => <PartView part={part()} streaming={m().status === "streaming"} plain={m().role === "user"} />}
        </Index>
      </div>
      <div class="message-actions" hidden={m().status === "streaming" || !hasText()}>
        <CopyButton text={text} testid="copy-message" title="Copy message" />
      </div>
    </article>
  );
}

// A person's text shows as typed (line breaks, spaces, no markdown); the agent's as markdown.
function PartView(props: { part: PartState; streaming: boolean; plain: boolean }) {
  return (
    <Switch>
      <Match when={props.part.kind === "text" && props.plain}>
        <div class="plain" data-testid="message-text">
          {(props.part as { text: string }).text}
        </div>
      </Match>
      <Match when={props.part.kind === "text"}>
        <Markdown text={(props.part as { text: string }).text} />
      </Match>
      <Match when={props.part.kind === "reasoning"}>
        <Reasoning text={(props.part as { text: string }).text} streaming={props.streaming} />
      </Match>
      <Match when={props.part.kind === "tool"}>
        <ToolCall part={props.part as unknown as ToolPartState} />
      </Match>
    </Switch>
  );
}

/** The model's reasoning, in its own collapsible lane. */
function Reasoning(props: { text: string; streaming: boolean }) {
  return (
    <details class="reasoning" data-testid="reasoning">
      <summary>
        <span class="lane-label">{props.streaming ? "Thinking…" : "Reasoning"}</span>
        <span class="lane-count">{`${props.text.split(/\s+/).filter(Boolean).length} words`}</span>
      </summary>
      <div class="reasoning-text" data-testid="reasoning-text">
        {props.text}
      </div>
    </details>
  );
}

/** A tool call: streamed arguments, status, result, and the approval it waits for. */
function ToolCall(props: { part: ToolPartState }) {
  const p = () => props.part;
  const scope = useSession();
  const approvals = createMemo(() =>
    scope
      ? Object.values(scope.live.state.approvals)
          .filter((a) => a && a.call === p().call)
          .map((a) => a.id)
      : [],
  );
  const result = () => {
    const value = p().result;
    if (value === null || value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value, null, 2);
  };
  return (
    <div class="tool" data-testid="tool-call" data-call-id={p().call} data-status={p().status}>
      <div class="tool-head">
        <span class="tool-icon" aria-hidden="true">
          ⚙
        </span>
        <span class="tool-name" data-testid="tool-name">
          {p().name}
        </span>
        <span class={`badge ${p().status}`} data-testid="tool-status">
          {p().status}
        </span>
      </div>
      <pre class="tool-args" data-testid="tool-args">
        {p().args}
      </pre>
      <pre class="tool-result" data-testid="tool-result" hidden={!result()}>
        {result()}
      </pre>
      <div class="tool-error" data-testid="tool-error" hidden={!p().error}>
        {p().error ?? ""}
      </div>
      <For each={approvals()}>
        {(id) => (
          <ApprovalCard
            approval={scope!.live.state.approvals[id]}
            resolve={(d) => scope!.live.resolveApproval(id, d, scope!.by())}
          />
        )}
      </For>
    </div>
  );
}
