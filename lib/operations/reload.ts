/**
 * Reloading the data file into a running server (SIGHUP, the file watcher).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { LiveDirectory } from "../directory/live.ts";
import { describe } from "../errors.ts";
import { DEFAULTS } from "../limits.ts";
import type { PreparedJournal } from "../journal/follower.ts";
import { DataError, type LoadResult } from "../loading/load.ts";
import type { Counters } from "./counters.ts";
import { collectGarbage } from "./memory.ts";
import type { ReloadOutcome } from "./metrics.ts";

const logger = getLogger(["sipdir", "reload"]);

/** Options of {@linkcode Reloader}. */
export interface ReloaderOptions {
  /** The directory being served; a successful reload replaces its content. */
  live: LiveDirectory;
  /** Where reloads, failures and refusals are counted. */
  counters: Counters;
  /** The data file to read again. */
  path: string;
  /**
   * Refuse new data with fewer entries than this share of the data being
   * served (a truncated or empty dump); 0 accepts anything valid. Default 0.5.
   */
  minRatio?: number;
  /** How to load the file, e.g. `WorkerLoader.load`, which keeps this thread free to serve. */
  load: (path: string) => Promise<LoadResult>;
  /**
   * Brings new data up to date before it is served (the journal's changes
   * above its sequence number: `JournalFollower.prepare`).
   */
  prepare?: (loaded: LoadResult) => Promise<PreparedJournal>;
}

/**
 * Reloads on request, one load at a time. The new directory is built beside
 * the old one, which keeps answering meanwhile, and is swapped in only when
 * the whole file loaded and passed the guard; otherwise the old data stays.
 *
 * @example
 * ```ts
 * import { Counters } from "./counters.ts";
 * import { LiveDirectory } from "../directory/live.ts";
 * import { loadDirectory } from "../loading/load.ts";
 * import { Reloader } from "./reload.ts";
 * import assert from "node:assert/strict";
 * const { directory } = await loadDirectory({ path: "data/regs" });
 * const live = new LiveDirectory(directory);
 * const counters = new Counters();
 * const load = (path: string) => loadDirectory({ path });
 * const reloader = new Reloader({ live, counters, path: "data/regs", load });
 * await reloader.request();
 * assert.deepEqual(counters.reloads, 1);
 * ```
 */
export class Reloader {
  readonly #live: LiveDirectory;
  readonly #counters: Counters;
  readonly #path: string;
  readonly #minRatio: number;
  readonly #load: (path: string) => Promise<LoadResult>;
  readonly #prepare: ((loaded: LoadResult) => Promise<PreparedJournal>) | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #lastReload: ReloadOutcome | undefined;

  /** Creates a reloader; nothing is read until {@linkcode request}. */
  constructor(options: ReloaderOptions) {
    this.#live = options.live;
    this.#counters = options.counters;
    this.#path = options.path;
    this.#minRatio = options.minRatio ?? DEFAULTS.reloadMinRatio;
    this.#load = options.load;
    this.#prepare = options.prepare;
  }

  /** The last reload's outcome, once one ended. */
  get lastReload(): ReloadOutcome | undefined {
    return this.#lastReload;
  }

  /**
   * Starts a reload, or queues one if a reload is running (several requests
   * during one load make one more load, of the newest file).
   * Resolves when no reload is left to do.
   */
  request(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#loop().finally(() => this.#running = undefined);
    return this.#running;
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      await this.#reloadOnce();
    } while (this.#again);
  }

  async #reloadOnce(): Promise<void> {
    const counters = this.#counters;
    const path = this.#path;
    logger.info("reloading {path}", { path });
    let loaded: LoadResult;
    try {
      loaded = await this.#load(path);
    } catch (error) {
      counters.reloadFailures++;
      this.#lastReload = { at: Date.now(), ok: false };
      if (error instanceof DataError) {
        logger.error("reload failed, still serving the previous data: {message}", {
          message: error.message,
        });
      } else {
        // Not the file's fault: a bug, logged whole.
        logger.error("reload failed, still serving the previous data: {error}\n{stack}", {
          error: describe(error),
          stack: (error as Error)?.stack ?? "",
        });
      }
      return;
    }
    const { report } = loaded;
    const serving = this.#live.directory.size;
    if (this.#minRatio > 0 && report.entries < serving * this.#minRatio) {
      counters.reloadRefusals++;
      this.#lastReload = { at: Date.now(), ok: false };
      logger.error(
        "reload refused, still serving the previous data: {path} has {entries} entries, " +
          "fewer than {ratio} of the {serving} being served (--reload-min-ratio); " +
          "restart sipdir to serve it anyway",
        { path, entries: report.entries, ratio: this.#minRatio, serving },
      );
      return;
    }
    const prepared = await this.#prepare?.(loaded);
    const behind = prepared?.check() ?? "";
    if (behind !== "") {
      prepared!.abandon();
      counters.reloadRefusals++;
      this.#lastReload = { at: Date.now(), ok: false };
      logger.error("reload refused, still serving the previous data: {path}: {reason}", {
        path,
        reason: behind,
      });
      return;
    }
    // Both at once, with nothing in between: lookups see the old data or the new, whole.
    this.#live.replace(loaded.directory);
    prepared?.commit();
    // The previous directory is garbage now: give its memory back.
    collectGarbage();
    counters.reloads++;
    this.#lastReload = { at: Date.now(), ok: true };
    logger.info(
      "reloaded {path}: {entries} entries ({duplicates} duplicates), {bytes} bytes in {ms} ms",
      { path, ...report, ms: Math.round(report.ms) },
    );
  }
}
