// The Vercel AI SDK's own chat client (`ai`'s AbstractChat over DefaultChatTransport) against a
// sessionwire server. One scenario per run; it prints one JSON line: what the chat holds.
//
//   node aisdk.mjs SERVER_URL SESSION TOKEN SCENARIO [ARG...]
//
// Scenarios:
//   send TEXT...               send each text as a user message, one after the other
//   approve TEXT approve|deny  send TEXT, answer the approval it asks for, let the turn finish
//   stop TEXT CHARS            send TEXT, stop reading once the answer has CHARS characters
//   resume                     a fresh chat (a reloaded page) resumes the session's running turn
//   cancel TEXT CHARS          send TEXT, cancel its turn through the native API after CHARS characters
//   regenerate TEXT            send TEXT, then ask for another answer to it
import { AbstractChat, DefaultChatTransport } from "ai";

const [url, session, token, scenario, ...args] = process.argv.slice(2);

class State {
  constructor() {
    this.status = "ready";
    this.error = undefined;
    this.messages = [];
  }
  pushMessage(message) {
    this.messages = [...this.messages, message];
  }
  popMessage() {
    this.messages = this.messages.slice(0, -1);
  }
  replaceMessage(index, message) {
    this.messages = [...this.messages.slice(0, index), message, ...this.messages.slice(index + 1)];
  }
  snapshot(value) {
    return structuredClone(value);
  }
}

const errors = [];
const data = [];

function newChat() {
  return new (class extends AbstractChat {})({
    id: session,
    state: new State(),
    transport: new DefaultChatTransport({
      api: `${url}/v1/aisdk/chat`,
      headers: { Authorization: `Bearer ${token}` },
    }),
    onError: (error) => errors.push(String(error.message ?? error)),
    onData: (part) => data.push(part),
  });
}

function textOf(message) {
  return message.parts.filter((p) => p.type === "text").map((p) => p.text).join("");
}

function lastAssistant(chat) {
  return [...chat.messages].reverse().find((m) => m.role === "assistant");
}

async function until(condition, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function report(chat, extra = {}) {
  const messages = chat.messages.map((m) => ({
    id: m.id,
    role: m.role,
    text: textOf(m),
    parts: m.parts.map((p) => {
      const { type, state, toolCallId, input, output, errorText, approval, id, data: d } = p;
      return { type, state, toolCallId, input, output, errorText, approval, id, data: d };
    }),
  }));
  console.log(JSON.stringify({ status: chat.status, errors, data, messages, ...extra }));
}

const chat = newChat();
if (scenario === "send") {
  for (const text of args) await chat.sendMessage({ text });
  report(chat);
} else if (scenario === "approve") {
  const [text, answer] = args;
  await chat.sendMessage({ text });
  const asked = lastAssistant(chat).parts.find((p) => p.state === "approval-requested");
  const before = structuredClone(lastAssistant(chat));
  await chat.addToolApprovalResponse({ id: asked.approval.id, approved: answer === "approve" });
  await chat.sendMessage();
  report(chat, { before: { id: before.id, parts: before.parts.map((p) => ({ type: p.type, state: p.state })) } });
} else if (scenario === "stop") {
  const [text, chars] = args;
  const sent = chat.sendMessage({ text });
  await until(() => textOf(lastAssistant(chat) ?? { parts: [] }).length >= Number(chars));
  await chat.stop();
  await sent;
  report(chat);
} else if (scenario === "resume") {
  await chat.resumeStream();
  report(chat);
} else if (scenario === "cancel") {
  const [text, chars] = args;
  const sent = chat.sendMessage({ text });
  await until(() => textOf(lastAssistant(chat) ?? { parts: [] }).length >= Number(chars));
  const turn = lastAssistant(chat).id;
  const answer = await fetch(`${url}/v1/sessions/${session}/turns/${turn}/cancel`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}` },
  });
  await sent;
  report(chat, { cancel: answer.status });
} else if (scenario === "regenerate") {
  await chat.sendMessage({ text: args[0] });
  const first = structuredClone(lastAssistant(chat));
  await chat.regenerate();
  report(chat, { first: { id: first.id, text: textOf(first) } });
} else {
  throw new Error(`unknown scenario ${scenario}`);
}
