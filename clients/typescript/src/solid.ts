// The SolidJS adapter (`@sessionwire/client/solid`): the same client, its state in Solid stores.
//
// A conversation's state is a `createStore`: the fold runs under `produce`, so a delta changes
// one part's `text` and only what reads it updates; a snapshot is applied with `reconcile` keyed
// by id, so the objects already shown (and the DOM showing them) survive it. No message
// component remounts while a reply streams.
import { createStore, produce, reconcile } from "solid-js/store";
import { Connection, type ConnectionOptions } from "./connection.js";
import { Conversation, type ConversationOptions } from "./conversation.js";
import type { Host, HostFactory } from "./host.js";

/** A host whose state is a Solid store: fine-grained updates, snapshots reconciled by id. */
export const solidHost: HostFactory = <T extends object>(initial: T): Host<T> => {
  const [value, setValue] = createStore<T>(initial);
  return {
    value,
    update: (mutate) => setValue(produce(mutate)),
    replace: (next) => setValue(reconcile(next, { key: "id", merge: true })),
  };
};

/** A conversation whose state and status are Solid stores. */
export function createConversation(id: string, token: string, options: ConversationOptions = {}): Conversation {
  return new Conversation(id, token, { host: solidHost, ...options });
}

/** A connection whose status (and that of every conversation it opens) is a Solid store. */
export function createConnection(options: ConnectionOptions = {}): Connection {
  return new Connection({ host: solidHost, ...options });
}
