/**
 * Loading a dump on a worker thread, so that the thread answering lookups
 * only swaps the finished directory in.
 *
 * @module
 */

import { Directory, type DirectoryParts } from "../directory/directory.ts";
import { DataError, type LoadOptions, type LoadReport, type LoadResult } from "./load.ts";

/** What the worker is asked to load. @internal */
export interface LoadRequest {
  /** The dump. */
  path: string;
  /** Storage chunk size, for tests. */
  chunkSize?: number;
  /** Send progress messages. */
  progress: boolean;
  /** Load as a background job: at the lowest CPU priority, reading on the worker's own thread. */
  background: boolean;
}

/** What the worker answers. @internal */
export type LoadReply =
  | { kind: "progress"; done: number; total: number }
  | { kind: "loaded"; parts: DirectoryParts; report: LoadReport }
  | { kind: "failed"; line: number; reason: string; cause?: string };

/** The worker module; `deno compile` embeds it through the compile task's `--include`. */
export const LOAD_WORKER_URL: URL = new URL("./load_worker.ts", import.meta.url);

/**
 * Loads dumps like `loadDirectory` does, on a worker thread: the calling
 * thread stays free to serve, and receives the finished directory's buffers
 * without a copy. Every failure, including the worker running out of memory
 * or stopping, rejects with a {@linkcode DataError} naming the file; the
 * calling thread is never at risk.
 *
 * The worker lives from the first load to {@linkcode WorkerLoader.close}:
 * creating one holds up the calling thread for tens of milliseconds (Deno
 * builds its isolate before `new Worker` returns), which would be a stall in
 * the lookups of every reload. A worker that failed is replaced at the next
 * load. Loads run one at a time.
 *
 * @example
 * ```ts
 * import { WorkerLoader } from "./worker_load.ts";
 * import assert from "node:assert/strict";
 * const loader = new WorkerLoader();
 * try {
 *   const { directory, report } = await loader.load({ path: "data/regs" });
 *   assert.deepEqual(directory.size, report.entries);
 * } finally {
 *   loader.close();
 * }
 * ```
 */
export class WorkerLoader {
  readonly #url: URL;
  #worker: Worker | undefined;
  #busy: Promise<unknown> = Promise.resolve();
  /** Rejects the load in progress, if any. */
  #abort: ((reason: string) => void) | undefined;

  /**
   * Creates a loader; the worker starts at the first load.
   * @param url the worker module; tests point it elsewhere to make the worker fail
   */
  constructor(url: URL = LOAD_WORKER_URL) {
    this.#url = url;
  }

  /**
   * Loads `options.path`; waits for any load already running to end first.
   * With `background`, the worker first drops to the lowest CPU priority, for
   * good (a thread cannot raise it again): on a busy machine, threads that
   * answer lookups come first and the load takes the time left over.
   */
  load(options: LoadOptions & { background?: boolean }): Promise<LoadResult> {
    const result = this.#busy.then(() => this.#load(options));
    this.#busy = result.catch(() => {});
    return result;
  }

  /** Stops the worker; a load in progress rejects. A later load starts a new worker. */
  close(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    this.#abort?.("loading stopped");
  }

  #load(options: LoadOptions & { background?: boolean }): Promise<LoadResult> {
    const { path, onProgress } = options;
    const worker = this.#worker ??= new Worker(this.#url, {
      type: "module",
      name: "sipdir-loader",
    });
    return new Promise<LoadResult>((resolve, reject) => {
      this.#abort = (reason) => reject(new DataError(path, 0, reason));
      const fail = (reason: string) => {
        reject(new DataError(path, 0, reason));
        // A worker in an unknown state is not reused.
        this.close();
      };
      worker.onmessage = (event: MessageEvent<LoadReply>) => {
        const reply = event.data;
        if (reply.kind === "progress") {
          onProgress?.(reply.done, reply.total);
        } else if (reply.kind === "loaded") {
          resolve({ directory: new Directory(reply.parts), report: reply.report });
        } else {
          const cause = reply.cause === undefined ? undefined : { cause: reply.cause };
          reject(new DataError(path, reply.line, reply.reason, cause));
        }
      };
      worker.onerror = (event) => {
        // Handled here: an uncaught error in a worker would otherwise end the process.
        event.preventDefault();
        fail(`the loader stopped: ${event.message}`);
      };
      worker.onmessageerror = () => fail("the loader's answer could not be read");
      const request: LoadRequest = {
        path,
        chunkSize: options.chunkSize,
        progress: onProgress !== undefined,
        background: options.background ?? false,
      };
      worker.postMessage(request);
    }).finally(() => this.#abort = undefined);
  }
}
