/**
 * A progress line for long loads on a terminal.
 *
 * @module
 */

/** Options of {@linkcode progressLine}. */
export interface ProgressOptions {
  /** What is being loaded, e.g. the file name. */
  label: string;
  /** Where the line goes; it should be a terminal. */
  writer: { writeSync(p: Uint8Array): number };
  /** Milliseconds before the first update: quick loads print nothing. Default 300. */
  delay?: number;
  /** Minimum milliseconds between updates. Default 200. */
  interval?: number;
  /** Clock in milliseconds; tests pass their own. */
  now?: () => number;
}

/** A progress line: call `update` as work advances and `clear` at the end. */
export interface ProgressLine {
  /** Shows `done` of `total` bytes, if the last update is old enough. */
  update(done: number, total: number): void;
  /** Erases the line, if one was shown. */
  clear(): void;
}

/**
 * Creates a self-overwriting progress line (`\r` and erase-to-end).
 *
 * @example
 * ```ts
 * import { progressLine } from "./progress.ts";
 * import assert from "node:assert/strict";
 * const written: string[] = [];
 * const writer = { writeSync: (p: Uint8Array) => written.push(new TextDecoder().decode(p)) && p.length };
 * let now = 0;
 * const progress = progressLine({ label: "data/regs", writer, now: () => now });
 * progress.update(10e6, 100e6); // within the first 300 ms: nothing shown
 * now = 400;
 * progress.update(50e6, 100e6);
 * assert.deepEqual(written, ["\r\x1b[Kloading data/regs: 50% (50 of 100 MB)"]);
 * progress.clear();
 * ```
 */
export function progressLine(options: ProgressOptions): ProgressLine {
  const now = options.now ?? (() => performance.now());
  const encoder = new TextEncoder();
  const start = now();
  let next = start + (options.delay ?? 300);
  let shown = false;
  const write = (text: string) => {
    const bytes = encoder.encode(text);
    let done = 0;
    while (done < bytes.length) done += options.writer.writeSync(bytes.subarray(done));
  };
  return {
    update(done, total) {
      const t = now();
      if (t < next) return;
      next = t + (options.interval ?? 200);
      const percent = total > 0 ? Math.floor((done / total) * 100) : 100;
      const mb = (n: number) => Math.round(n / 1e6);
      write(`\r\x1b[Kloading ${options.label}: ${percent}% (${mb(done)} of ${mb(total)} MB)`);
      shown = true;
    },
    clear() {
      if (shown) write("\r\x1b[K");
      shown = false;
    },
  };
}
