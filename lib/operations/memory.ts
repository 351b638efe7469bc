/**
 * Returning memory promptly after a load or a reload.
 *
 * @module
 */

/**
 * Runs a full garbage collection when the runtime allows it (sipdir's tasks
 * pass `--v8-flags=--expose-gc`); otherwise does nothing.
 *
 * After a load, the index's growth left garbage behind, and after a reload
 * the whole previous directory is garbage. Nothing allocates much on the hot
 * path, so V8 could hold on to that memory for a long time; collecting once
 * at these two moments returns it to the system at once.
 */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
