// AG-UI's own client (`@ag-ui/client`'s HttpAgent, its event verification on) against a sessionwire
// server. One scenario per run; it prints one JSON line: the agent's messages and what each run said.
//
//   node agui.mjs SERVER_URL SESSION TOKEN SCENARIO [ARG...]
//
// Scenarios:
//   send TEXT...               each text as a user message, one run each, in one thread
//   approve TEXT approve|deny  a run that ends on an interrupt, then a run that answers it
//   cancel TEXT CHARS          cancel the run's turn through the native API after CHARS characters
import { randomUUID } from "node:crypto";
import { HttpAgent } from "@ag-ui/client";

const [url, session, token, scenario, ...args] = process.argv.slice(2);

// Anything the client warns about (a field it strips, an event it drops) is a failure of ours.
const warnings = [];
for (const level of ["warn", "error"]) {
  console[level] = (...parts) => warnings.push(parts.map(String).join(" "));
}

const agent = new HttpAgent({
  url: `${url}/v1/agui`,
  headers: { Authorization: `Bearer ${token}` },
  threadId: session,
});

const runs = [];

async function run(parameters = {}, onText = undefined) {
  const seen = { events: [], custom: [], outcome: undefined, error: undefined };
  try {
    await agent.runAgent(
      { runId: randomUUID(), ...parameters },
      {
        onEvent: ({ event }) => {
          seen.events.push(event.type);
        },
        onCustomEvent: ({ event }) => {
          seen.custom.push({ name: event.name, value: event.value });
        },
        onRunFinishedEvent: ({ outcome, interrupts }) => {
          seen.outcome = { outcome, interrupts };
        },
        onRunErrorEvent: ({ event }) => {
          seen.error = { message: event.message, code: event.code };
        },
        onTextMessageContentEvent: ({ textMessageBuffer, event }) => {
          if (onText) onText(textMessageBuffer + event.delta);
        },
      },
    );
  } catch (error) {
    seen.thrown = String(error.message ?? error);
  }
  runs.push(seen);
  return seen;
}

function say(text) {
  agent.addMessage({ id: randomUUID(), role: "user", content: text });
}

if (scenario === "send") {
  for (const text of args) {
    say(text);
    await run();
  }
} else if (scenario === "approve") {
  const [text, answer] = args;
  say(text);
  const first = await run();
  const interrupt = first.outcome.interrupts[0];
  await run({
    resume: [{ interruptId: interrupt.id, status: "resolved", payload: { decision: answer } }],
  });
} else if (scenario === "cancel") {
  const [text, chars] = args;
  say(text);
  let asked = false;
  await run({}, (buffer) => {
    if (asked || buffer.length < Number(chars)) return;
    asked = true;
    // The run's turn is the session's running one (its id is the native API's, not AG-UI's).
    fetch(`${url}/v1/sessions/${session}`, { headers: { Authorization: `Bearer ${token}` } })
      .then((r) => r.json())
      .then((body) => {
        const running = Object.values(body.state.turns).find((t) => t.status === "running");
        return fetch(`${url}/v1/sessions/${session}/turns/${running.id}/cancel`, {
          method: "POST",
          headers: { Authorization: `Bearer ${token}` },
        });
      });
  });
} else {
  throw new Error(`unknown scenario ${scenario}`);
}

const messages = agent.messages.map((m) => ({
  id: m.id,
  role: m.role,
  content: m.content,
  toolCalls: m.toolCalls?.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })),
  toolCallId: m.toolCallId,
}));
process.stdout.write(JSON.stringify({ runs, messages, warnings }) + "\n");
