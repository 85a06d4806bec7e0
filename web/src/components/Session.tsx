import { createEffect, createMemo, createSignal, type JSX, onCleanup, onMount, Show } from "solid-js";
import type { Conversation } from "@sessionwire/client";
import { SessionContext } from "../context";
import { createMedia, SHEET } from "../media";
import type { Pending } from "../pending";
import { Composer } from "./Composer";
import { Dialog } from "./Dialog";
import { JobPanel } from "./Jobs";
import { SharePanel } from "./Share";
import { Title } from "./Title";
import { Transcript } from "./Transcript";

/** One conversation: its header, the transcript, the composer and its jobs. */
export function SessionView(props: {
  live: Conversation;
  by: () => string;
  title: () => string | null;
  onTitle: (title: string | null) => void;
  onForget: () => void;
  /** The messages this tab sent in it that wait for their turn. */
  pending: Pending;
  /** The button that shows the conversations (shown on a phone, or when the list is hidden). */
  menu: JSX.Element;
  /** Focus the composer once shown. */
  autofocus: boolean;
  /** Whether something of the page covers the conversation (the drawer of conversations): Esc is its. */
  covered?: () => boolean;
}) {
  const live = props.live;
  const conn = live.status;
  const [sharing, setSharing] = createSignal(false);
  const [jobsOpen, setJobsOpen] = createSignal(false);
  // On a narrow screen the jobs are a sheet over the conversation: it takes the focus, Esc closes
  // it, and the focus goes back to the Jobs button.
  const sheet = createMedia(SHEET);
  const sheetOpen = () => jobsOpen() && sheet();
  const showJobs = (open: boolean) => {
    const had = jobs?.contains(document.activeElement) ?? false;
    setJobsOpen(open);
    if (!sheet()) return;
    if (open) jobs?.querySelector<HTMLElement>("[data-testid=jobs-close]")?.focus();
    else if (had || document.activeElement === document.body) toggle?.focus();
  };
  let view: HTMLDivElement | undefined;
  let jobs: HTMLElement | undefined;
  let toggle: HTMLButtonElement | undefined;
  // The sidebar shows the title the log has (renamed here, in another tab, or by the server).
  createEffect(() => props.onTitle(live.state.title));

  const send = async (text: string) => {
    const answer = await live.sendTurn(text);
    if (!live.state.turns[answer.turn]) props.pending.add({ turn: answer.turn, text, policy: answer.policy });
    return answer;
  };

  // Esc stops the running turn: the same action as its Stop button (disabled while it runs, a
  // refusal shown under the turn). Not from another field (Esc there means "never mind"), not while
  // an IME composes (its Esc drops the candidate text), and not while something covers the
  // conversation: a dialog or the drawer (Esc closes it, wherever the focus is), or the jobs sheet
  // (Esc closes it here).
  const onKey = (event: KeyboardEvent) => {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    if (event.isComposing || event.keyCode === 229) return;
    if (event.ctrlKey || event.metaKey || event.altKey || event.shiftKey) return;
    if (sharing() || props.covered?.() || document.querySelector('[aria-modal="true"]')) return;
    if (sheetOpen()) {
      event.preventDefault();
      showJobs(false);
      return;
    }
    const target = event.target as HTMLElement | null;
    const field = target?.closest("input, textarea, select, [contenteditable=true]");
    if (field && field.getAttribute("data-testid") !== "composer-input") return;
    const running = Object.keys(live.state.turns).filter((id) => live.state.turns[id]?.status === "running");
    for (const id of running) {
      view?.querySelector<HTMLButtonElement>(`[data-turn-id="${CSS.escape(id)}"] [data-testid=stop]`)?.click();
    }
  };
  onMount(() => window.addEventListener("keydown", onKey));
  onCleanup(() => window.removeEventListener("keydown", onKey));

  const connText = () => {
    switch (conn.state) {
      case "reconnecting":
        return `reconnecting (attempt ${conn.attempt})…`;
      case "catching-up":
        return "catching up…";
      case "failed":
        return `failed: ${conn.detail}`;
      default:
        return conn.state;
    }
  };
  const statusLine = () => {
    const s = live.state.status;
    if (!s) return "";
    if (s.turn && live.state.turns[s.turn]?.status !== "running") return "";
    if (s.job && live.state.jobs[s.job]?.status !== "running") return "";
    return s.text;
  };
  const jobCount = createMemo(() => Object.keys(live.state.jobs).length);
  const jobsRunning = createMemo(() => Object.values(live.state.jobs).filter((j) => j?.status === "running").length);
  return (
    <SessionContext.Provider value={{ live, by: props.by }}>
      <div class="session" data-testid="session" data-session-id={live.id} ref={view}>
        <header class="session-head">
          {props.menu}
          <div class="titles">
            <Title live={live} fallback={props.title} />
            <span class="muted mono session-id-line">{live.id}</span>
          </div>
          <span class="status-line muted" data-testid="status-line">
            {statusLine()}
          </span>
          <span class="spacer" />
          <span class="seq muted mono" data-testid="seq">{`seq ${live.state.seq}`}</span>
          <span
            class={`connection ${conn.state}`}
            data-testid="connection"
            role="status"
            data-state={conn.state}
            data-transport={conn.transport ?? ""}
            title={connText()}
          >
            <span class="dot" />
            <span class="conn-text">{connText()}</span>
          </span>
          <button
            class="btn small jobs-toggle"
            classList={{ active: jobsOpen() }}
            data-testid="jobs-toggle"
            aria-controls={`jobs-${live.id}`}
            aria-expanded={jobsOpen()}
            aria-label={`Background jobs: ${jobCount()}, ${jobsRunning()} running`}
            ref={toggle}
            onClick={() => showJobs(!jobsOpen())}
          >
            Jobs
            <span class="count" classList={{ running: jobsRunning() > 0 }}>
              {jobCount()}
            </span>
          </button>
          <button
            class="btn small share-button"
            data-testid="share"
            aria-haspopup="dialog"
            title="A link that opens this conversation in another browser"
            onClick={() => setSharing(true)}
          >
            Share
          </button>
        </header>
        <Show when={conn.state === "failed"}>
          <div class="session-problem" data-testid="session-problem" role="alert">
            <span>
              This conversation cannot be shown: {conn.detail || "the server refused it"}. Its records stay on the
              server; a link with a valid token opens it again.
            </span>
            <button class="btn small" data-testid="forget" onClick={() => props.onForget()}>
              Forget it in this browser
            </button>
          </div>
        </Show>
        <div class="session-body">
          <div class="chat" inert={sheetOpen()}>
            <Transcript live={live} by={props.by} send={send} pending={props.pending} />
            <Composer live={live} send={send} disabled={conn.state === "failed"} autofocus={props.autofocus} />
          </div>
          <JobPanel
            live={live}
            by={props.by}
            id={`jobs-${live.id}`}
            open={jobsOpen()}
            onClose={() => showJobs(false)}
            ref={(el) => (jobs = el)}
          />
        </div>
        <Show when={sharing()}>
          <Dialog title="Open this conversation elsewhere" testid="share-dialog" onClose={() => setSharing(false)}>
            <SharePanel id={live.id} token={live.token} />
          </Dialog>
        </Show>
      </div>
    </SessionContext.Provider>
  );
}
