/**
 * Yielding the serving thread for one turn of its event loop.
 *
 * @module
 */

/**
 * Resolves after the event loop has had a turn: the reads, writes and
 * timers that were ready (other connections' lookups) run first. For work
 * that would otherwise run on in promise reactions and hold the thread:
 * a client whose input keeps coming, a long read of the journal.
 *
 * @example
 * ```ts
 * import { nextTurn } from "./next_turn.ts";
 * import assert from "node:assert/strict";
 * const order: string[] = [];
 * setTimeout(() => order.push("timer"), 0);
 * await nextTurn();
 * order.push("after");
 * assert.deepEqual(order, ["timer", "after"]);
 * ```
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
