// An event stream read with `fetch`, for where there is no EventSource (Node 20).
//
// It parses the stream as the HTML standard says (`event`, `data`, `id` fields; comments; LF,
// CRLF or CR line ends; an event dispatched at a blank line) and tells its listeners as an
// EventSource would. Unlike an EventSource it never reconnects by itself: the stream's owner
// does, from the seq it last applied.
import type { SourceLike } from "./sse.js";

export interface FetchSourceOptions {
  fetch?: typeof fetch;
  headers?: Record<string, string>;
}

/** What a listener gets: the event's name, its data and its id. */
export interface StreamEvent {
  type: string;
  data: string;
  lastEventId: string;
}

export class FetchEventSource implements SourceLike {
  onopen: ((event: Event) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  /** 0 connecting, 1 open, 2 closed: as EventSource's readyState. */
  readyState = 0;
  /** The HTTP status of the response (0 before it, or without one). */
  status = 0;
  private readonly listeners = new Map<string, ((event: MessageEvent) => void)[]>();
  private readonly abort = new AbortController();

  constructor(
    readonly url: string,
    options: FetchSourceOptions = {},
  ) {
    void this.run(options.fetch ?? ((input, init) => fetch(input, init)), options.headers ?? {});
  }

  addEventListener(type: string, listener: (event: MessageEvent) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  close(): void {
    this.readyState = 2;
    this.abort.abort();
  }

  private async run(fetcher: typeof fetch, headers: Record<string, string>): Promise<void> {
    try {
      const response = await fetcher(this.url, {
        headers: { Accept: "text/event-stream", ...headers },
        cache: "no-store",
        signal: this.abort.signal,
      });
      this.status = response.status;
      const type = response.headers.get("content-type") ?? "";
      if (!response.ok || !type.startsWith("text/event-stream") || !response.body) {
        await response.body?.cancel();
        return this.fail();
      }
      if (this.readyState === 2) return;
      this.readyState = 1;
      this.onopen?.(new Event("open"));
      await this.read(response.body);
    } catch {
      // aborted by close(), or the connection dropped: told below
    }
    this.fail();
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const parser = new EventParser((event) => this.dispatch(event));
    for (;;) {
      const { value, done } = await reader.read();
      if (done || this.readyState === 2) return;
      parser.feed(decoder.decode(value, { stream: true }));
    }
  }

  private dispatch(event: StreamEvent): void {
    if (this.readyState !== 1) return;
    for (const listener of this.listeners.get(event.type) ?? []) listener(event as unknown as MessageEvent);
  }

  private fail(): void {
    if (this.readyState === 2) return;
    this.readyState = 2;
    this.onerror?.(new Event("error"));
  }
}

/** Splits a text/event-stream into events, fed any pieces of it. */
export class EventParser {
  private buffer = "";
  private type = "";
  private data: string[] = [];
  private id = "";
  private afterCR = false;

  constructor(private readonly emit: (event: StreamEvent) => void) {}

  feed(text: string): void {
    // A CRLF split between two pieces is one line end.
    if (this.afterCR && text.startsWith("\n")) text = text.slice(1);
    this.afterCR = text.endsWith("\r");
    this.buffer += text;
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop() ?? "";
    for (const line of lines) this.line(line);
  }

  private line(line: string): void {
    if (line === "") {
      if (this.data.length > 0) {
        this.emit({ type: this.type || "message", data: this.data.join("\n"), lastEventId: this.id });
      }
      this.type = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.type = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.id = value;
  }
}
