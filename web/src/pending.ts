// Messages this tab sent whose turn has not started yet: shown at once (queued behind the running
// turn, say) and replaced by the real turn when its `turn.started` comes. Nothing is recorded for
// them: the log names a queued turn only once it starts.
import { createSignal } from "solid-js";

/** A message sent from this tab, waiting for its turn to start. */
export interface PendingTurn {
  /** The turn the server admitted it as. */
  turn: string;
  text: string;
  /** The server's turn policy when it was admitted (`queue`: it waits for the running turn). */
  policy: string | undefined;
}

/** The messages one conversation sent from this tab that wait for their turn, in the order sent. */
export function createPending() {
  const [items, setItems] = createSignal<PendingTurn[]>([]);
  return {
    items,
    add(item: PendingTurn): void {
      setItems((now) => [...now.filter((p) => p.turn !== item.turn), item]);
    },
    /** Forget those whose turn the conversation has now (`has(turn)`). */
    prune(has: (turn: string) => boolean): void {
      if (items().some((p) => has(p.turn))) setItems((now) => now.filter((p) => !has(p.turn)));
    },
  };
}

export type Pending = ReturnType<typeof createPending>;
