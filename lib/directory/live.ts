/**
 * The directory being served, shared by every listener, the reloader and
 * the metrics.
 *
 * @module
 */

import type { Directory } from "./directory.ts";

/**
 * Holds the directory that answers lookups. Replacing it is one assignment:
 * each batch of lookups reads {@linkcode LiveDirectory.directory} once, so it
 * sees the old data or the new, never a mix. Nothing else should keep a
 * reference to a served directory: once replaced, the old one must become
 * garbage, or its memory stays taken (a whole copy of the data).
 *
 * @example
 * ```ts
 * import { DirectoryBuilder } from "./directory.ts";
 * import { LiveDirectory } from "./live.ts";
 * import assert from "node:assert/strict";
 * const live = new LiveDirectory(new DirectoryBuilder().finish());
 * live.replace(new DirectoryBuilder().finish());
 * assert.deepEqual(live.directory.size, 0);
 * ```
 */
export class LiveDirectory {
  /** The directory answering lookups now. */
  directory: Directory;
  /** When it was loaded, in milliseconds since the epoch. */
  loadedAt: number;

  /**
   * Starts serving `directory`.
   * @param directory the first directory
   * @param loadedAt when it was loaded; now by default
   */
  constructor(directory: Directory, loadedAt: number = Date.now()) {
    this.directory = directory;
    this.loadedAt = loadedAt;
  }

  /** Serves `directory` from the next batch of lookups on. */
  replace(directory: Directory): void {
    this.directory = directory;
    this.loadedAt = Date.now();
  }
}
