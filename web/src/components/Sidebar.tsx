import { For } from "solid-js";
import type { ConnectionStatus } from "@sessionwire/client";
import type { Registry } from "../registry";

/** The conversations this browser knows, and a button to start a new one. */
export function Sidebar(props: {
  registry: Registry;
  current: string | null;
  creating: boolean;
  onCreate: () => void;
  link: ConnectionStatus;
  name: string;
  onName: (name: string) => void;
}) {
  return (
    <nav class="sidebar" data-testid="sidebar">
      <div class="brand">
        <span class="logo" aria-hidden="true">
          ◆
        </span>
        sessionwire
      </div>
      <button class="btn primary wide" data-testid="new-session" disabled={props.creating} onClick={props.onCreate}>
        + New conversation
      </button>
      <div class="session-list" data-testid="session-list">
        <For each={props.registry.sessions}>
          {(s) => (
            <a
              href={`#/s/${encodeURIComponent(s.id)}`}
              class="session-item"
              classList={{ active: s.id === props.current }}
              data-testid="session-item"
              data-session-id={s.id}
            >
              <span class="session-title">{s.title || "New conversation"}</span>
              <span class="session-id">{s.id}</span>
            </a>
          )}
        </For>
      </div>
      <div
        class={`link ${props.link.state}`}
        data-testid="link"
        data-transport={props.link.transport}
        data-state={props.link.state}
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

/** One line about the tab's link: what carries the records, its state, how many conversations. */
function linkText(link: ConnectionStatus): string {
  const count = `${link.sessions} conversation${link.sessions === 1 ? "" : "s"}`;
  if (link.transport === "sse") return `EventSource fallback · ${count}`;
  const state = link.state === "reconnecting" ? `reconnecting (${link.attempt})` : link.state;
  return `WebSocket ${state} · ${count}`;
}
