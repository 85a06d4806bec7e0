// A command a button sends: busy while it runs (so a second click sends nothing), and its error kept to show.
import { createSignal } from "solid-js";

export interface Action<A extends unknown[]> {
  /** Send the command, unless one is running; never rejects (the error is kept in `error`). */
  run(...args: A): Promise<void>;
  busy(): boolean;
  /** Why the last attempt failed ("" if it did not). */
  error(): string;
}

/** Wrap a command for a button. */
export function createAction<A extends unknown[]>(send: (...args: A) => Promise<unknown>): Action<A> {
  const [busy, setBusy] = createSignal(false);
  const [error, setError] = createSignal("");
  return {
    busy,
    error,
    async run(...args: A): Promise<void> {
      if (busy()) return;
      setBusy(true);
      setError("");
      try {
        await send(...args);
      } catch (exc) {
        setError(exc instanceof Error ? exc.message : String(exc));
      } finally {
        setBusy(false);
      }
    },
  };
}
