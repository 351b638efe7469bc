/**
 * Rate-limiting a recurring warning.
 *
 * @module
 */

/**
 * Lets a recurring warning through at once, then at most once per interval
 * with a count of what happened meanwhile.
 *
 * @example
 * ```ts
 * import { Throttle } from "./throttle.ts";
 * import assert from "node:assert/strict";
 * const throttle = new Throttle(10_000);
 * assert.deepEqual([throttle.hit(), throttle.hit(), throttle.hit()], [1, 0, 0]);
 * ```
 */
export class Throttle {
  readonly #interval: number;
  #last = -Infinity;
  #count = 0;

  /**
   * Creates a throttle.
   * @param interval milliseconds between two reports
   */
  constructor(interval: number) {
    this.#interval = interval;
  }

  /** Counts an occurrence; returns how many to report now, or 0 to stay quiet. */
  hit(): number {
    this.#count++;
    const now = performance.now();
    if (now - this.#last < this.#interval) return 0;
    this.#last = now;
    const count = this.#count;
    this.#count = 0;
    return count;
  }
}
