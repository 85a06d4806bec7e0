import { createEffect, createSignal, onCleanup, onMount, Show } from "solid-js";
import { Api, type Conversation } from "@sessionwire/client";
import { createConnection, createConversation } from "@sessionwire/client/solid";
import { SessionContext } from "./context";
import { Composer } from "./components/Composer";
import { Transcript } from "./components/Transcript";
import { JobPanel } from "./components/Jobs";
import { Sidebar } from "./components/Sidebar";
import { Title } from "./components/Title";
import { createRegistry } from "./registry";

declare global {
  interface Window {
    sessionwire?: {
      state(id: string): unknown;
      stats(id: string): { applied: number; batches: number; seq: number } | null;
      link(): { transport: string; state: string; sessions: number; open: string[] };
    };
  }
}

interface Route {
  id: string | null;
  token: string | null;
}

function parseHash(hash: string): Route {
  const match = /^#\/s\/([^?]+)(?:\?(.*))?$/.exec(hash);
  if (!match) return { id: null, token: null };
  const params = new URLSearchParams(match[2] ?? "");
  return { id: decodeURIComponent(match[1]), token: params.get("token") };
}

export function App() {
  const api = new Api();
  const registry = createRegistry();
  // Every conversation shown in this tab stays open (subscribed, its store kept) until the tab
  // closes: over the one WebSocket that costs one subscription, not a connection.
  const lives = new Map<string, Conversation>();
  const link = createConnection({ api });
  const [current, setCurrent] = createSignal<Conversation | null>(null);
  const [creating, setCreating] = createSignal(false);
  const [problem, setProblem] = createSignal("");
  const [name, setName] = createSignal(localStorage.getItem("sessionwire.name") ?? "web");

  const open = (id: string): Conversation | null => {
    const known = registry.get(id);
    if (!known) return null;
    let live = lives.get(id);
    if (!live || live.token !== known.token) {
      if (live) {
        link.detach(live);
        live.close();
      }
      live = createConversation(id, known.token, { api });
      lives.set(id, live);
      link.attach(live);
    }
    link.focus(live);
    return live;
  };

  const route = () => {
    const { id, token } = parseHash(location.hash);
    if (id && token) {
      registry.add({ id, token, title: registry.get(id)?.title ?? null, created: Date.now() });
      history.replaceState(null, "", `#/s/${encodeURIComponent(id)}`);
    }
    registry.refresh();
    if (!id) {
      const first = registry.sessions[0];
      setCurrent(null);
      if (first) location.hash = `#/s/${encodeURIComponent(first.id)}`;
      return;
    }
    const live = open(id);
    setProblem(live ? "" : `This browser has no token for session ${id}.`);
    setCurrent(live);
  };

  const create = async () => {
    setCreating(true);
    try {
      const session = await api.createSession(null);
      registry.add({ id: session.id, token: session.token, title: session.title, created: Date.now() });
      location.hash = `#/s/${encodeURIComponent(session.id)}`;
    } catch (exc) {
      setProblem(exc instanceof Error ? exc.message : String(exc));
    } finally {
      setCreating(false);
    }
  };

  /** Forget a conversation this browser cannot read (its records stay on the server). */
  const forget = (id: string) => {
    const live = lives.get(id);
    if (live) {
      link.detach(live);
      live.close();
      lives.delete(id);
    }
    registry.remove(id);
    setProblem("");
    if (location.hash) location.hash = "";
    else route();
  };

  const onStorage = (e: StorageEvent) => e.key === "sessionwire.sessions" && registry.refresh();
  // A read-only hook for tests and debugging: the folded state of an open conversation.
  window.sessionwire = {
    state: (id: string) => {
      const live = lives.get(id);
      return live ? JSON.parse(JSON.stringify(live.state)) : null;
    },
    stats: (id: string) => {
      const live = lives.get(id);
      return live ? { applied: live.applied, batches: live.batches, seq: live.seq } : null;
    },
    link: () => ({ ...link.status, open: [...lives.keys()] }),
  };
  onMount(() => {
    window.addEventListener("hashchange", route);
    window.addEventListener("storage", onStorage);
    route();
  });
  onCleanup(() => {
    window.removeEventListener("hashchange", route);
    window.removeEventListener("storage", onStorage);
    link.close();
    for (const live of lives.values()) live.close();
  });

  return (
    <div class="app">
      <Sidebar
        registry={registry}
        current={current()?.id ?? null}
        creating={creating()}
        onCreate={() => void create()}
        link={link.status}
        name={name()}
        onName={(n) => {
          localStorage.setItem("sessionwire.name", n);
          setName(n);
        }}
      />
      <main class="main">
        <Show
          when={current()}
          keyed
          fallback={
            <div class="welcome" data-testid="welcome">
              <h1>sessionwire</h1>
              <p>{problem() || "Every conversation gets its own typed, durable, ordered event channel."}</p>
              <button class="btn primary" onClick={() => void create()} disabled={creating()}>
                Start a conversation
              </button>
            </div>
          }
        >
          {(live) => (
            <SessionView
              live={live}
              by={name}
              title={() => registry.get(live.id)?.title ?? null}
              onTitle={(title) => registry.setTitle(live.id, title)}
              onForget={() => forget(live.id)}
            />
          )}
        </Show>
      </main>
    </div>
  );
}

function SessionView(props: {
  live: Conversation;
  by: () => string;
  title: () => string | null;
  onTitle: (title: string | null) => void;
  onForget: () => void;
}) {
  const live = props.live;
  const conn = live.status;
  // The sidebar shows the title the log has (renamed here, in another tab, or by the server).
  createEffect(() => props.onTitle(live.state.title));
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
  return (
    <SessionContext.Provider value={{ live, by: props.by }}>
      <div class="session" data-testid="session" data-session-id={live.id}>
        <header class="session-head">
          <div class="titles">
            <Title live={live} fallback={props.title} />
            <span class="muted mono">{live.id}</span>
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
          >
            <span class="dot" />
            {connText()}
          </span>
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
          <div class="chat">
            <Transcript live={live} by={props.by} />
            <Composer live={live} disabled={conn.state === "failed"} />
          </div>
          <JobPanel live={live} by={props.by} />
        </div>
      </div>
    </SessionContext.Provider>
  );
}
