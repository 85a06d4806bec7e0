// Timing: when a batch of streamed records is applied, and how long to wait before a retry.

/** Schedules `flush` and returns a function that cancels it. */
export type Scheduler = (flush: () => void) => () => void;

/** Run `flush` on the next animation frame, or after 50 ms if frames are not coming (a hidden tab). */
export const nextFrame: Scheduler = (flush) => {
  let done = false;
  const run = () => {
    if (done) return;
    done = true;
    cancelAnimationFrame(frame);
    clearTimeout(timer);
    flush();
  };
  const frame = requestAnimationFrame(run);
  const timer = setTimeout(run, 50);
  return () => {
    done = true;
    cancelAnimationFrame(frame);
    clearTimeout(timer);
  };
};

/** Run `flush` after `ms` (16: about a frame), where there are no animation frames (Node). */
export function after(ms: number): Scheduler {
  return (flush) => {
    const timer = setTimeout(flush, ms);
    return () => clearTimeout(timer);
  };
}

/** Apply every record at once, unbatched. */
export const immediately: Scheduler = (flush) => {
  flush();
  return () => {};
};

/** The default: per animation frame in a browser, every 16 ms elsewhere. */
export function defaultScheduler(): Scheduler {
  return typeof requestAnimationFrame === "function" ? nextFrame : after(16);
}

/** The delay before attempt `attempt` (1, 2, ...): doubling from `base`, capped at 8 s, with jitter. */
export function backoff(attempt: number, base: number, random: () => number = Math.random): number {
  return Math.min(8000, base * 2 ** (attempt - 1)) * (0.75 + random() / 2);
}
