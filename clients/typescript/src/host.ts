// Where the client keeps a state it changes: a plain object here, a reactive store in an adapter.
//
// The core never assumes a framework: every state it holds (a conversation's folded state, the
// status of a subscription or a connection) lives in a `Host`. The default host mutates a plain
// object; the SolidJS adapter's host is a `createStore`, so the same fold becomes fine-grained
// path updates, and a snapshot is reconciled by id instead of replacing what is shown.

/** A state and the two ways the client changes it. */
export interface Host<T extends object> {
  /** The state; always the same object (a reactive proxy in an adapter). */
  readonly value: T;
  /** Change the state in place, as one update. */
  update(mutate: (draft: T) => void): void;
  /** Make the state equal to `next`, keeping the objects whose `id` (or position) is the same. */
  replace(next: T): void;
}

/** Makes the host of each state. */
export type HostFactory = <T extends object>(initial: T) => Host<T>;

/** The default host: a plain object, changed in place. */
export const plainHost: HostFactory = <T extends object>(initial: T): Host<T> => {
  const value = initial;
  return {
    value,
    update: (mutate) => mutate(value),
    replace(next) {
      const target = value as Record<string, unknown>;
      for (const key of Object.keys(target)) if (!(key in next)) delete target[key];
      Object.assign(target, next);
    },
  };
};
