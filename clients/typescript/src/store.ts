// One conversation's folded state, applied record by record and path by path.
//
// Records are folded into the state in place (in a reactive host, as fine-grained path updates).
// Streamed records (deltas, tool arguments, job progress) are batched per frame, or by any
// `Scheduler`; every other record first applies the pending batch, then itself, so a batch can
// never land after a structural record such as the `message.completed` of its message. After
// each batch, subscribers hear what changed: the records applied and the turns, messages (and
// their parts), jobs and approvals they touched. A record at or below the last one accepted,
// or of another session, is dropped: nothing is applied twice.
import { apply, emptyState, type SessionState, type Touched, type WireRecord } from "./fold.js";
import { type HostFactory, plainHost } from "./host.js";
import { defaultScheduler, type Scheduler } from "./schedule.js";

/** Record types batched per frame; every other type flushes the batch and applies at once. */
export const STREAMED_TYPES: ReadonlySet<string> = new Set(["message.delta", "tool.args.delta", "job.progress"]);

/** What one applied batch changed. */
export interface Changes {
  /** The records applied, in seq order (empty for a snapshot). */
  readonly records: readonly WireRecord[];
  /** The state was replaced by a server snapshot: anything may have changed. */
  readonly snapshot: boolean;
  /** The session's own fields changed: title, status line, errors. */
  readonly session: boolean;
  readonly turns: ReadonlySet<string>;
  /** Every message changed, as a whole (started, completed, closed) or in some of its parts. */
  readonly messages: ReadonlySet<string>;
  /** For each message changed only part by part (not as a whole): the indexes of those parts. */
  readonly parts: ReadonlyMap<string, ReadonlySet<number>>;
  readonly jobs: ReadonlySet<string>;
  readonly approvals: ReadonlySet<string>;
  /** The seq the state stands at after the batch. */
  readonly seq: number;
}

export type ChangeListener = (changes: Changes) => void;

export interface StoreOptions {
  /** Where the state lives (default: a plain object; the SolidJS adapter passes a store). */
  host?: HostFactory;
  /** When a batch of streamed records is applied (default: per animation frame, or every 16 ms). */
  schedule?: Scheduler;
}

export class ConversationStore {
  /** Records applied so far (each once). */
  applied = 0;
  /** Batches applied so far. */
  batches = 0;

  private readonly host;
  private readonly schedule: Scheduler;
  private readonly listeners = new Set<ChangeListener>();
  private queue: WireRecord[] = [];
  private cancelFlush: (() => void) | null = null;
  private accepted = 0;

  constructor(
    readonly session: string,
    options: StoreOptions = {},
  ) {
    this.host = (options.host ?? plainHost)(emptyState());
    this.schedule = options.schedule ?? defaultScheduler();
  }

  /** The folded state (a reactive proxy in an adapter); the same object for the store's life. */
  get state(): SessionState {
    return this.host.value;
  }

  /** The seq of the last record accepted (applied, or pending in the batch). */
  get lastSeq(): number {
    return this.accepted;
  }

  /** Hear what each batch changed; returns the function that stops it. */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Take a record: batched if it is a streamed one, else applied at once after the batch. False if dropped. */
  push(record: WireRecord): boolean {
    if (record.session !== this.session || record.seq <= this.accepted) return false; // never another's, never twice
    this.accepted = record.seq;
    this.queue.push(record);
    if (!STREAMED_TYPES.has(record.type)) {
      this.flush();
    } else if (this.cancelFlush === null) {
      let ran = false;
      const cancel = this.schedule(() => {
        ran = true;
        this.cancelFlush = null;
        this.flush();
      });
      if (!ran) this.cancelFlush = cancel;
    }
    return true;
  }

  /** Apply every pending record now, as one update. */
  flush(): void {
    if (this.cancelFlush !== null) {
      this.cancelFlush();
      this.cancelFlush = null;
    }
    if (this.queue.length === 0) return;
    const records = this.queue;
    this.queue = [];
    const changes = new Collector(records);
    this.host.update((state) => {
      for (const record of records) apply(state, record, changes.touch);
    });
    this.applied += records.length;
    this.batches += 1;
    this.emit(changes.done(this.state.seq));
  }

  /** Replace the state with a server snapshot standing at `at` (pending records are applied first). */
  reset(state: SessionState, at: number): void {
    this.flush();
    // Also when it goes back in time: then the server lost records (a reset), and it is the truth.
    this.host.replace({ ...state, seq: at });
    this.accepted = at;
    this.emit({ ...new Collector([]).done(at), snapshot: true });
  }

  /** Drop what is pending and hear nothing more. */
  close(): void {
    this.flush();
    this.listeners.clear();
  }

  private emit(changes: Changes): void {
    for (const listener of [...this.listeners]) listener(changes);
  }
}

/** Gathers what `apply` reports into one `Changes`. */
class Collector {
  session = false;
  readonly turns = new Set<string>();
  readonly messages = new Set<string>();
  readonly parts = new Map<string, Set<number>>();
  readonly jobs = new Set<string>();
  readonly approvals = new Set<string>();
  private readonly whole = new Set<string>();

  constructor(readonly records: readonly WireRecord[]) {}

  readonly touch = (what: Touched): void => {
    switch (what.kind) {
      case "session":
        this.session = true;
        break;
      case "turn":
        this.turns.add(what.id);
        break;
      case "job":
        this.jobs.add(what.id);
        break;
      case "approval":
        this.approvals.add(what.id);
        break;
      case "message": {
        this.messages.add(what.id);
        if (what.part === null) {
          this.whole.add(what.id);
          break;
        }
        const parts = this.parts.get(what.id) ?? new Set<number>();
        parts.add(what.part);
        this.parts.set(what.id, parts);
      }
    }
  };

  done(seq: number): Changes {
    const { records, session, turns, messages, parts, jobs, approvals } = this;
    for (const id of this.whole) parts.delete(id);
    return { records, snapshot: false, session, turns, messages, parts, jobs, approvals, seq };
  }
}
