// @ts-check
// Tail a conversation from Node: its text as it streams, one line per turn, job and approval.
// It resumes exactly from the last record it applied after any disconnect.
//   node tail.mjs http://127.0.0.1:8765 SESSION TOKEN
import { Connection } from "@sessionwire/client";
import WebSocket from "ws"; // Node 22 has a global WebSocket: then leave `openSocket` out

const [url, session, token] = process.argv.slice(2);
const connection = new Connection({ baseUrl: url, openSocket: (address) => new WebSocket(address) });
const chat = connection.open(session, token, { schedule: (flush) => (flush(), () => {}) });

chat.subscribe(({ records }) => {
  for (const record of records) {
    if (record.type === "message.delta") process.stdout.write(String(record.text));
    else if (record.type === "message.completed") process.stdout.write("\n");
    else if (/^(turn|job|approval)\./.test(record.type)) console.log(`· ${record.type} (seq ${record.seq})`);
  }
});
chat.onStatus((status) => {
  if (status.state === "live") console.error(`live at seq ${chat.seq}`);
  if (status.state === "failed") {
    console.error(`cannot follow ${session}: ${status.detail}`);
    process.exit(1);
  }
});
process.on("SIGINT", () => {
  connection.close();
  process.exit(0);
});
