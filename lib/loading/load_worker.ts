/**
 * The loader's worker: reads, validates and indexes a dump off the serving
 * thread, then hands the finished buffers over without copying them. A gzip
 * dump is decompressed here too: Deno's `DecompressionStream` inflates on
 * the thread that writes to it, so in the background all of a gzip load,
 * file reads included, runs on this low-priority thread.
 *
 * Started by `WorkerLoader` from `worker_load.ts`; `deno compile`
 * must embed this module (`--include`), as it is not imported statically.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import os from "node:os";
import { transferList } from "../directory/directory.ts";
import { collectGarbage } from "../operations/memory.ts";
import { DataError, loadDirectory } from "./load.ts";
import type { LoadReply, LoadRequest } from "./worker_load.ts";

self.onmessage = async (event: MessageEvent<LoadRequest>) => {
  const { path, chunkSize, progress, background } = event.data;
  if (background) lowerPriority();
  const reply = (message: LoadReply, transfer: Transferable[] = []) =>
    self.postMessage(message, transfer);
  try {
    const { directory, report } = await loadDirectory({
      path,
      chunkSize,
      readOnThisThread: background,
      onProgress: progress ? (done, total) => reply({ kind: "progress", done, total }) : undefined,
    });
    const parts = directory.parts();
    reply({ kind: "loaded", parts, report }, transferList(parts));
    // What the load left behind (the index's growth) is garbage now.
    collectGarbage();
  } catch (error) {
    // Anything else, out of memory included, still names the file.
    const data = error instanceof DataError
      ? error
      : new DataError(path, 0, `cannot load: ${describe(error)}`);
    const cause = data.cause === undefined ? undefined : describe(data.cause);
    reply({ kind: "failed", line: data.line, reason: data.reason, cause });
  }
};

/**
 * Drops this thread to the lowest CPU priority (nice 19). On Linux the nice
 * value is per thread, and `setpriority` on "process" 0 sets the calling
 * thread's; it needs `--allow-sys=setPriority`. Without it, or where the
 * system refuses, the load runs at normal priority: slower lookups during a
 * reload, nothing worse.
 */
function lowerPriority(): void {
  try {
    if (os.getPriority() < 19) os.setPriority(19);
  } catch {
    // Normal priority it is.
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
