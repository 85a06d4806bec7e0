import { For } from "solid-js";
import type { ConnectionStatus } from "@sessionwire/client";
import type { Registry } from "../registry";
import { sessionHash } from "../share";

/** The conversations this browser knows, a button to start a new one and one to open another. */
export function Sidebar(props: {
  registry: Registry;
  current: string | null;
  creating: boolean;
  onCreate: () => void;
  /** Open a conversation from a link or its id and token. */
  onOpen: () => void;
  /** Hide the list (a drawer on a phone, a collapsed column on a desktop). */
  onHide: () => void;
  /** A conversation of the list was picked (the drawer closes, even if it was the one shown). */
  onPick: () => void;
  link: ConnectionStatus;
  name: string;
  onName: (name: string) => void;
}) {
  return (
    <nav class="sidebar" id="sidebar" data-testid="sidebar" aria-label="Conversations">
      <div class="brand">
        <span class="logo" aria-hidden="true">
          ◆
        </span>
        sessionwire
        <span class="spacer" />
        <button
          class="btn small ghost sidebar-close"
          data-testid="sidebar-close"
          aria-label="Hide conversations"
          title="Hide conversations"
          onClick={() => props.onHide()}
        >
          «
        </button>
      </div>
      <button class="btn primary wide" data-testid="new-session" disabled={props.creating} onClick={props.onCreate}>
        + New conversation
      </button>
      <button class="btn wide subtle" data-testid="open-session" onClick={() => props.onOpen()}>
        Open a conversation…
      </button>
      <div class="session-list" data-testid="session-list">
        <For each={props.registry.sessions}>
          {(s) => (
            <a
              href={sessionHash(s.id)}
              class="session-item"
              classList={{ active: s.id === props.current }}
              aria-current={s.id === props.current ? "page" : undefined}
              data-testid="session-item"
              data-session-id={s.id}
              onClick={() => props.onPick()}
            >
              <span class="session-title">{s.title || "New conversation"}</span>
              <span class="session-id">{s.id}</span>
            </a>
          )}
        </For>
      </div>
      <div
        class={`link ${linkState(props.link)}`}
        data-testid="link"
        data-transport={props.link.transport}
        data-state={linkState(props.link)}
        title={props.link.detail}
      >
        <span class="dot" />
        {linkText(props.link)}
      </div>
      <label class="who">
        <span>Signed as</span>
        <input
          data-testid="user-name"
          value={props.name}
          onChange={(e) => props.onName(e.currentTarget.value.trim() || "web")}
        />
      </label>
    </nav>
  );
}

/** The button that shows the conversations (on a phone, or when the list is hidden). */
export function MenuButton(props: { onClick: () => void; expanded: boolean }) {
  return (
    <button
      class="btn icon menu-button"
      data-testid="menu"
      aria-label="Show conversations"
      aria-controls="sidebar"
      aria-expanded={props.expanded}
      title="Conversations"
      onClick={() => props.onClick()}
    >
      ☰
    </button>
  );
}

// A connection with no conversation to carry has nothing to connect to: it is idle, not "connecting".
function linkState(link: ConnectionStatus): string {
  return link.sessions === 0 && link.state !== "open" ? "idle" : link.state;
}

/** One line about the tab's link: what carries the records, its state, how many conversations. */
function linkText(link: ConnectionStatus): string {
  if (linkState(link) === "idle") return "No conversation open";
  const count = `${link.sessions} conversation${link.sessions === 1 ? "" : "s"}`;
  if (link.transport === "sse") return `EventSource fallback · ${count}`;
  const state = link.state === "reconnecting" ? `reconnecting (${link.attempt})` : link.state;
  return `WebSocket ${state} · ${count}`;
}
