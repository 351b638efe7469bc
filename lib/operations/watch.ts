/**
 * Reloading when the data file changes (`--watch`).
 *
 * @module
 */

import { basename, dirname, resolve } from "node:path";

/** Options of {@linkcode watchDataFile}. */
export interface WatchOptions {
  /** The data file. */
  path: string;
  /** Called once the file has changed and been quiet for `quiet` ms. */
  onChange: () => void;
  /** Called instead when the file is gone at that moment. */
  onMissing?: () => void;
  /** Milliseconds without a further change before `onChange`. Default 200. */
  quiet?: number;
}

/** Changes that can mean new data; "access" also fires when the file is only read. */
const CHANGES = new Set<Deno.FsEvent["kind"]>(["create", "modify", "remove", "rename"]);

/**
 * Watches the data file through its directory, so that the usual way to
 * publish a dump (write a new file, rename it over the old) is seen as well
 * as a rewrite in place. A burst of events makes one call, once the file has
 * been quiet for a while; a file that disappears is reported and waited for.
 *
 * @example
 * ```ts
 * import { watchDataFile } from "./watch.ts";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * const changed = Promise.withResolvers<void>();
 * const watcher = watchDataFile({ path: `${dir}/regs`, onChange: changed.resolve, quiet: 20 });
 * await Deno.writeTextFile(`${dir}/regs.new`, "{}\n");
 * await Deno.rename(`${dir}/regs.new`, `${dir}/regs`);
 * await changed.promise;
 * watcher.close();
 * await Deno.remove(dir, { recursive: true });
 * assert.ok(true);
 * ```
 */
export function watchDataFile(options: WatchOptions): { close(): void } {
  const path = resolve(options.path);
  const name = basename(path);
  const quiet = options.quiet ?? 200;
  const watcher = Deno.watchFs(dirname(path), { recursive: false });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settle = async () => {
    timer = undefined;
    try {
      await Deno.stat(path);
    } catch {
      options.onMissing?.();
      return;
    }
    options.onChange();
  };
  (async () => {
    try {
      for await (const event of watcher) {
        if (!CHANGES.has(event.kind) || !event.paths.some((p) => basename(p) === name)) continue;
        clearTimeout(timer);
        timer = setTimeout(settle, quiet);
      }
    } catch {
      // Closed, or the directory went away: nothing more to watch.
    }
  })();
  return {
    close() {
      clearTimeout(timer);
      try {
        watcher.close();
      } catch {
        // Already closed.
      }
    },
  };
}
