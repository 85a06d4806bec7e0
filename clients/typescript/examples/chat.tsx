// A minimal chat view in SolidJS: each message streams in place and never remounts.
import type { Conversation, MessageState } from "@sessionwire/client";
import { createConnection } from "@sessionwire/client/solid";
import { For } from "solid-js";
import { render } from "solid-js/web";

export function Chat(props: { chat: Conversation }) {
  const state = props.chat.state;
  let input!: HTMLInputElement;
  const send = (event: SubmitEvent) => {
    event.preventDefault();
    void props.chat.sendTurn(input.value);
    input.value = "";
  };
  return (
    <main>
      <p>{props.chat.status.state}</p>
      <For each={state.message_order}>{(id) => <Message message={state.messages[id]} />}</For>
      <form onSubmit={send}>
        <input ref={input} placeholder="Say something" />
        <button>Send</button>
      </form>
    </main>
  );
}

function Message(props: { message: MessageState }) {
  return (
    <article data-message={props.message.id} data-role={props.message.role} data-status={props.message.status}>
      <For each={props.message.parts}>{(part) => <p>{part.kind === "tool" ? part.name : part.text}</p>}</For>
    </article>
  );
}

/** Show a conversation of the server that served the page. */
export function mount(root: HTMLElement, session: string, token: string) {
  const chat = createConnection().open(session, token);
  return render(() => <Chat chat={chat} />, root);
}
