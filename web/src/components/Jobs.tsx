import { createEffect, createMemo, For } from "solid-js";
import { createAction } from "../action";
import type { Conversation } from "@sessionwire/client";
import { stickToBottom } from "../scroll";
import { ApprovalCard } from "./Approval";
import { MessageView } from "./Message";

/**
 * Every job of the session; each card is created once and updated in place. Beside the conversation
 * on a wide screen; on a narrow one, over it while `open` (the header's Jobs button).
 */
export function JobPanel(props: {
  live: Conversation;
  by: () => string;
  id?: string;
  open?: boolean;
  onClose?: () => void;
  ref?: (el: HTMLElement) => void;
}) {
  const ids = createMemo(() => Object.keys(props.live.state.jobs));
  return (
    <aside
      ref={(el) => props.ref?.(el)}
      class="jobs"
      classList={{ open: !!props.open }}
      id={props.id}
      data-testid="jobs"
      aria-label="Background jobs"
    >
      <h3>
        Background jobs <span class="count">{ids().length}</span>
        <span class="spacer" />
        <button
          class="btn small ghost jobs-close"
          data-testid="jobs-close"
          aria-label="Back to the conversation"
          onClick={() => props.onClose?.()}
        >
          ✕
        </button>
      </h3>
      <p class="muted" hidden={ids().length > 0}>
        No jobs yet. Start one with <code>/job 50 Title</code> or the Job button.
      </p>
      <For each={ids()}>{(id) => <JobCard live={props.live} id={id} by={props.by} />}</For>
    </aside>
  );
}

function JobCard(props: { live: Conversation; id: string; by: () => string }) {
  const state = props.live.state;
  const job = () => state.jobs[props.id];
  const cancel = createAction(() => props.live.cancelJob(props.id));
  let bar: HTMLDivElement | undefined;
  // Only a running job's bar eases to its width. Once it has ended, a transition still running
  // from its last progress must not hold the bar short of its end: Chromium keeps it when the
  // class that declared it goes, if the two updates came in different frames.
  createEffect(() => {
    if (job().status !== "running" && typeof bar?.getAnimations === "function") {
      for (const animation of bar.getAnimations()) animation.cancel();
    }
  });
  const percent = () => {
    const p = job().progress;
    if (job().status === "completed") return 100;
    if (!p || !p.total) return 0;
    return Math.min(100, Math.round((100 * p.done) / p.total));
  };
  const progressText = () => {
    const p = job().progress;
    if (!p) return job().status === "running" ? "starting…" : "";
    return `${p.done}${p.total ? ` / ${p.total}` : ""}${p.note ? ` · ${p.note}` : ""}`;
  };
  const detail = () => {
    const j = job();
    if (j.status === "completed") return j.summary ?? "";
    if (j.status === "failed") return j.error ?? "";
    return j.reason ?? "";
  };
  const jobCalls = createMemo(() => {
    const out = new Set<string>();
    for (const id of job().messages) {
      for (const part of state.messages[id]?.parts ?? []) if (part.kind === "tool") out.add(part.call);
    }
    return out;
  });
  const approvals = createMemo(() =>
    Object.values(state.approvals)
      .filter((a) => a && a.job === props.id && !(a.call && jobCalls().has(a.call)))
      .map((a) => a.id),
  );
  return (
    <div class="job" data-testid="job" data-job-id={props.id} data-status={job().status}>
      <div class="job-head">
        <span class="job-title" data-testid="job-title">
          {job().title || props.id}
        </span>
        <span class={`badge ${job().status}`} data-testid="job-status">
          {job().status}
        </span>
        <button
          class="btn small stop"
          data-testid="job-cancel"
          aria-label={`Cancel job ${job().title || props.id}`}
          hidden={job().status !== "running"}
          disabled={cancel.busy()}
          onClick={() => void cancel.run()}
        >
          Cancel
        </button>
      </div>
      <div class="inline-error" data-testid="job-cancel-error" role="alert" hidden={!cancel.error()}>
        {cancel.error()}
      </div>
      <div
        class={`progress ${job().status}`}
        data-testid="job-progress"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent()}
      >
        <div class="bar" ref={bar} style={{ width: `${percent()}%` }} />
      </div>
      <div class="job-meta muted" data-testid="job-progress-text">
        {progressText()}
      </div>
      <div
        class="job-output"
        data-testid="job-output"
        ref={(el) => stickToBottom(el, () => job().progress?.done ?? state.seq)}
      >
        <For each={job().messages}>{(id) => <MessageView message={state.messages[id]} />}</For>
      </div>
      <For each={approvals()}>
        {(id) => (
          <ApprovalCard approval={state.approvals[id]} resolve={(d) => props.live.resolveApproval(id, d, props.by())} />
        )}
      </For>
      <div class={`job-detail ${job().status}`} data-testid="job-detail" hidden={!detail()}>
        {detail()}
      </div>
    </div>
  );
}
