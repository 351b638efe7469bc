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
}

/** What the worker answers. @internal */
export type LoadReply =
  | { kind: "progress"; done: number; total: number }
  | { kind: "loaded"; parts: DirectoryParts; report: LoadReport }
  | { kind: "failed"; line: number; reason: string; cause?: string };

/** The worker module; `deno compile` embeds it through the compile task's `--include`. */
export const LOAD_WORKER_URL: URL = new URL("./load_worker.ts", import.meta.url);

/**
 * Loads a dump like `loadDirectory` does, on a worker thread: the calling
 * thread stays free to serve, and receives the finished directory's buffers
 * without a copy. Every failure, including the worker running out of memory
 * or stopping, rejects with a {@linkcode DataError} naming the file; the
 * caller's thread is never at risk.
 *
 * @example
 * ```ts
 * import { loadInWorker } from "./worker_load.ts";
 * import { assertEquals } from "node:assert/strict";
 * const { directory, report } = await loadInWorker({ path: "data/regs" });
 * assertEquals(directory.size, report.entries);
 * ```
 */
export function loadInWorker(
  options: LoadOptions & {
    /** The worker module; tests point it elsewhere to make the worker fail. */
    workerUrl?: URL;
  },
): Promise<LoadResult> {
  const { path, onProgress } = options;
  const worker = new Worker(options.workerUrl ?? LOAD_WORKER_URL, {
    type: "module",
    name: "sipdir-loader",
  });
  const result = new Promise<LoadResult>((resolve, reject) => {
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
      reject(new DataError(path, 0, `the loader stopped: ${event.message}`));
    };
    worker.onmessageerror = () => {
      reject(new DataError(path, 0, "the loader's answer could not be read"));
    };
  });
  const request: LoadRequest = {
    path,
    chunkSize: options.chunkSize,
    progress: onProgress !== undefined,
  };
  worker.postMessage(request);
  return result.finally(() => worker.terminate());
}
