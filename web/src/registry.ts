// The sessions this browser created (or was given a token for), kept in localStorage.
import { createStore, reconcile } from "solid-js/store";

export interface KnownSession {
  id: string;
  token: string;
  title: string | null;
  created: number;
}

const KEY = "sessionwire.sessions";

/** A reactive list of known sessions, newest first, saved on every change. */
export function createRegistry(storage: Storage = localStorage) {
  const [sessions, setSessions] = createStore<KnownSession[]>(load(storage));

  function save(): void {
    storage.setItem(KEY, JSON.stringify(sessions));
  }

  return {
    sessions,
    /** The session with this id, if this browser knows it. */
    get(id: string): KnownSession | undefined {
      return sessions.find((s) => s.id === id);
    },
    /** Remember a session (or update its token and title). */
    add(session: KnownSession): void {
      // Another tab may have added sessions meanwhile: merge with what is stored.
      const stored = load(storage);
      const merged = [session, ...stored.filter((s) => s.id !== session.id)];
      for (const s of sessions) if (!merged.some((m) => m.id === s.id)) merged.push(s);
      setSessions(reconcile(merged, { key: "id" })); // keep the items already shown
      save();
    },
    /** Show a session under the title its log has (the server's; null keeps the one shown). */
    setTitle(id: string, title: string | null): void {
      const i = sessions.findIndex((s) => s.id === id);
      if (i >= 0 && title && sessions[i].title !== title) {
        setSessions(i, "title", title);
        save();
      }
    },
    /** Forget a session (its records stay on the server). */
    remove(id: string): void {
      setSessions(
        reconcile(
          sessions.filter((s) => s.id !== id),
          { key: "id" },
        ),
      );
      save();
    },
    /** Pick up sessions another tab added. */
    refresh(): void {
      const stored = load(storage);
      for (const s of stored) if (!sessions.some((m) => m.id === s.id)) setSessions(sessions.length, s);
    },
  };
}

export type Registry = ReturnType<typeof createRegistry>;

function load(storage: Storage): KnownSession[] {
  try {
    const data = JSON.parse(storage.getItem(KEY) ?? "[]") as KnownSession[];
    return Array.isArray(data) ? data.filter((s) => s && typeof s.id === "string" && typeof s.token === "string") : [];
  } catch {
    return [];
  }
}
