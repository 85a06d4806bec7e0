// @sessionwire/client: a conversation's records, folded, live, with exact resume. No framework.
export {
  Api,
  ApiError,
  type ApiOptions,
  type Created,
  type Decision,
  type ErrorCode,
  type EventInput,
  type JobAccepted,
  type Renamed,
  type RequestOptions,
  type Snapshot,
  type TurnAccepted,
} from "./api.js";
export {
  Connection,
  type ConnectionOptions,
  type ConnectionStatus,
  type Transport,
  type TransportHooks,
} from "./connection.js";
export {
  type ControlFrame,
  Conversation,
  type ConversationOptions,
  type SubscriptionState,
  type SubscriptionStatus,
} from "./conversation.js";
export { EventParser, FetchEventSource, type FetchSourceOptions, type StreamEvent } from "./eventsource.js";
export {
  type ApprovalState,
  apply,
  emptyState,
  foldRecords,
  type Full,
  type JobState,
  type MessageState,
  type PartState,
  type ReasoningPartState,
  type RunStatus,
  type SessionState,
  type TextPartState,
  type ToolPartState,
  type Touch,
  type Touched,
  type TurnState,
  type UnknownRecord,
  type WireRecord,
} from "./fold.js";
export type * as protocol from "./generated/protocol.js";
export { EVENT_TYPES } from "./generated/types.js";
export { type Host, type HostFactory, plainHost } from "./host.js";
export { after, backoff, defaultScheduler, immediately, nextFrame, type Scheduler } from "./schedule.js";
export { type SocketLike, SocketTransport, type SocketOptions } from "./socket.js";
export { MAX_STREAMS, type SourceLike, type SseOptions, SseTransport } from "./sse.js";
export { type ChangeListener, type Changes, ConversationStore, STREAMED_TYPES, type StoreOptions } from "./store.js";
export { validEvent } from "./validate.js";
