/**
 * Reloading the data file into a running server (SIGHUP).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { DataError, loadDirectory } from "../loading/load.ts";
import { collectGarbage } from "./memory.ts";
import type { Server } from "../transport/server.ts";

const logger = getLogger(["sipdir", "reload"]);

/**
 * Reloads on request, one load at a time. The new directory is built beside
 * the old one, which keeps answering meanwhile, and is swapped in only when
 * the whole file loaded; a bad file leaves the old data in place.
 *
 * @example
 * ```ts ignore
 * const reloader = new Reloader(server, "data/regs");
 * Deno.addSignalListener("SIGHUP", () => reloader.request());
 * ```
 */
export class Reloader {
  readonly #server: Server;
  readonly #path: string;
  #running: Promise<void> | undefined;
  #again = false;

  /**
   * Creates a reloader; nothing is read until {@linkcode request}.
   * @param server the server whose directory is replaced
   * @param path the data file to read again
   */
  constructor(server: Server, path: string) {
    this.#server = server;
    this.#path = path;
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
    const counters = this.#server.counters;
    logger.info("reloading {path}", { path: this.#path });
    try {
      const { directory, report } = await loadDirectory({ path: this.#path });
      this.#server.directory = directory;
      // The previous directory is garbage now: give its memory back.
      collectGarbage();
      counters.reloads++;
      logger.info(
        "reloaded {path}: {entries} entries ({duplicates} duplicates), {bytes} bytes in {ms} ms",
        { path: this.#path, ...report, ms: Math.round(report.ms) },
      );
    } catch (error) {
      counters.reloadFailures++;
      const message = error instanceof DataError ? error.message : String(error);
      logger.error("reload failed, still serving the previous data: {message}", { message });
    }
  }
}
