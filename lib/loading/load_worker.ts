/**
 * The loader's worker: reads, validates and indexes a dump off the serving
 * thread, then hands the finished buffers over without copying them.
 *
 * Started by `WorkerLoader` from `worker_load.ts`; `deno compile`
 * must embed this module (`--include`), as it is not imported statically.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { transferList } from "../directory/directory.ts";
import { collectGarbage } from "../operations/memory.ts";
import { DataError, loadDirectory } from "./load.ts";
import type { LoadReply, LoadRequest } from "./worker_load.ts";

self.onmessage = async (event: MessageEvent<LoadRequest>) => {
  const { path, chunkSize, progress } = event.data;
  const reply = (message: LoadReply, transfer: Transferable[] = []) =>
    self.postMessage(message, transfer);
  try {
    const { directory, report } = await loadDirectory({
      path,
      chunkSize,
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

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
