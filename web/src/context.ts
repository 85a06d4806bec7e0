import { createContext, useContext } from "solid-js";
import type { Conversation } from "@sessionwire/client";

/** The open conversation and who acts in it, for components deep in its tree. */
export interface SessionScope {
  live: Conversation;
  by: () => string;
}

export const SessionContext = createContext<SessionScope>();

/** The open conversation, if the component is inside one. */
export function useSession(): SessionScope | undefined {
  return useContext(SessionContext);
}
