import { createSignal, onCleanup, onMount, Show, untrack } from "solid-js";
import { Api, type Conversation } from "@sessionwire/client";
import { createConnection, createConversation } from "@sessionwire/client/solid";
import { Dialog } from "./components/Dialog";
import { OpenForm } from "./components/OpenForm";
import { SessionView } from "./components/Session";
import { MenuButton, Sidebar } from "./components/Sidebar";
import { createMedia, NARROW } from "./media";
import { createPending, type Pending } from "./pending";
import { createRegistry } from "./registry";
import { parseHash, sessionHash, type Target } from "./share";

declare global {
  interface Window {
    sessionwire?: {
      state(id: string): unknown;
      stats(id: string): { applied: number; batches: number; seq: number } | null;
      link(): { transport: string; state: string; sessions: number; open: string[] };
    };
  }
}

const SIDEBAR_KEY = "sessionwire.sidebar";

export function App() {
  const api = new Api();
  const registry = createRegistry();
  // Every conversation shown in this tab stays open (subscribed, its store kept) until the tab
  // closes: over the one WebSocket that costs one subscription, not a connection.
  const lives = new Map<string, Conversation>();
  // Per conversation, the messages this tab sent that wait for their turn (kept while another is shown).
  const pendings = new Map<string, Pending>();
  const link = createConnection({ api });
  const [current, setCurrent] = createSignal<Conversation | null>(null);
  const [creating, setCreating] = createSignal(false);
  const [problem, setProblem] = createSignal("");
  // A conversation the address names but this browser has no token for: the page asks for one.
  const [missing, setMissing] = createSignal<string | null>(null);
  const [opening, setOpening] = createSignal(false);
  const [fresh, setFresh] = createSignal<string | null>(null);
  const [name, setName] = createSignal(localStorage.getItem("sessionwire.name") ?? "web");
  const narrow = createMedia(NARROW);
  const [drawer, setDrawer] = createSignal(false);
  const [collapsed, setCollapsed] = createSignal(localStorage.getItem(SIDEBAR_KEY) === "hidden");

  // The button that showed or hid the list goes with it: the focus moves to the one that brings it back.
  const focusOn = (testid: string) =>
    queueMicrotask(() => document.querySelector<HTMLElement>(`[data-testid=${testid}]`)?.focus());
  const showSidebar = () => {
    if (narrow()) {
      setDrawer(true);
    } else {
      setCollapsed(false);
      localStorage.removeItem(SIDEBAR_KEY);
    }
    focusOn("new-session");
  };
  const hideSidebar = () => {
    if (narrow()) {
      setDrawer(false);
    } else {
      setCollapsed(true);
      localStorage.setItem(SIDEBAR_KEY, "hidden");
    }
    focusOn("menu");
  };
  /** The drawer is open over the page: the page behind it is inert, and Esc closes it. */
  const drawerOpen = () => drawer() && narrow();
  // Esc closes the drawer wherever the focus is (and stops no turn: the conversation sees it covered).
  const onKey = (event: KeyboardEvent) => {
    if (event.key !== "Escape" || event.defaultPrevented || event.isComposing || event.keyCode === 229) return;
    if (!drawerOpen() || document.querySelector('[aria-modal="true"]')) return;
    event.preventDefault();
    hideSidebar();
  };

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
      history.replaceState(null, "", sessionHash(id));
    }
    registry.refresh();
    setDrawer(false); // a conversation was picked (or the address changed): the drawer has done its job
    setOpening(false);
    if (!id) {
      const first = registry.sessions[0];
      setCurrent(null);
      setMissing(null);
      if (first) location.hash = sessionHash(first.id);
      return;
    }
    const live = open(id);
    setMissing(live ? null : id);
    setProblem("");
    setCurrent(live);
  };

  const create = async () => {
    setCreating(true);
    try {
      const session = await api.createSession(null);
      registry.add({ id: session.id, token: session.token, title: session.title, created: Date.now() });
      setFresh(session.id);
      location.hash = sessionHash(session.id);
    } catch (exc) {
      setProblem(exc instanceof Error ? exc.message : String(exc));
    } finally {
      setCreating(false);
    }
  };

  /** Open a conversation from a link or its id and token: this browser keeps it from now on. */
  const openTarget = (target: Target) => {
    setOpening(false);
    // Keep the token first, then go to the conversation's address without it: an address that
    // carries the token is never navigated to (it would stay in the browser's history).
    const known = registry.get(target.id);
    registry.add({
      id: target.id,
      token: target.token,
      title: known?.title ?? null,
      created: known?.created ?? Date.now(),
    });
    const hash = sessionHash(target.id);
    if (location.hash === hash)
      route(); // the page asked for this conversation's token: no navigation
    else location.hash = hash;
  };

  /** Forget a conversation this browser cannot read (its records stay on the server). */
  const forget = (id: string) => {
    const live = lives.get(id);
    if (live) {
      link.detach(live);
      live.close();
      lives.delete(id);
    }
    pendings.delete(id);
    registry.remove(id);
    setProblem("");
    if (location.hash) location.hash = "";
    else route();
  };

  const pendingOf = (id: string): Pending => {
    let pending = pendings.get(id);
    if (!pending) pendings.set(id, (pending = createPending()));
    return pending;
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
    window.addEventListener("keydown", onKey);
    route();
  });
  onCleanup(() => {
    window.removeEventListener("hashchange", route);
    window.removeEventListener("storage", onStorage);
    window.removeEventListener("keydown", onKey);
    link.close();
    for (const live of lives.values()) live.close();
  });

  const menu = () => <MenuButton onClick={showSidebar} expanded={narrow() ? drawer() : !collapsed()} />;

  return (
    <div class="app" classList={{ "sidebar-collapsed": collapsed() && !narrow(), "drawer-open": drawerOpen() }}>
      <Sidebar
        registry={registry}
        current={current()?.id ?? null}
        creating={creating()}
        onCreate={() => {
          setDrawer(false);
          void create();
        }}
        onOpen={() => {
          setDrawer(false);
          setOpening(true);
        }}
        onHide={hideSidebar}
        onPick={() => setDrawer(false)}
        link={link.status}
        name={name()}
        onName={(n) => {
          localStorage.setItem("sessionwire.name", n);
          setName(n);
        }}
      />
      <div class="scrim" data-testid="scrim" aria-hidden="true" onClick={() => setDrawer(false)} />
      <main class="main" inert={drawerOpen()}>
        <Show
          when={current()}
          keyed
          fallback={
            <div class="welcome-page">
              <header class="top-bar">{menu()}</header>
              <div class="welcome" data-testid="welcome">
                <h1>sessionwire</h1>
                <Show
                  when={missing()}
                  keyed
                  fallback={
                    <>
                      <p>{problem() || "Every conversation gets its own typed, durable, ordered event channel."}</p>
                      <button class="btn primary" onClick={() => void create()} disabled={creating()}>
                        Start a conversation
                      </button>
                      <button class="btn subtle" data-testid="welcome-open" onClick={() => setOpening(true)}>
                        Open one from a link or its token
                      </button>
                    </>
                  }
                >
                  {(id) => (
                    <>
                      <p data-testid="missing-token">
                        This browser has no token for conversation <code>{id}</code>. Paste a link that carries it, or
                        enter its token (the CLI keeps the tokens of the conversations it created).
                      </p>
                      <OpenForm id={id} onOpen={openTarget} autofocus />
                    </>
                  )}
                </Show>
              </div>
            </div>
          }
        >
          {(live) => {
            // A conversation this tab just created takes the focus once, not each time it is shown again.
            const created = untrack(fresh) === live.id;
            if (created) setFresh(null);
            return (
              <SessionView
                live={live}
                by={name}
                title={() => registry.get(live.id)?.title ?? null}
                onTitle={(title) => registry.setTitle(live.id, title)}
                onForget={() => forget(live.id)}
                pending={pendingOf(live.id)}
                menu={menu()}
                autofocus={created}
                covered={drawerOpen}
              />
            );
          }}
        </Show>
      </main>
      <Show when={opening()}>
        <Dialog title="Open a conversation" testid="open-dialog" onClose={() => setOpening(false)}>
          <p class="muted">
            A conversation created in another browser or with the CLI: paste its link, or enter its id and token.
          </p>
          <OpenForm onOpen={openTarget} />
        </Dialog>
      </Show>
    </div>
  );
}
