/**
 * Reloading when the data file changes (`--watch`), never while it is
 * still being written.
 *
 * @module
 */

import { basename, dirname, resolve } from "node:path";

/** Options of {@linkcode watchDataFile}. */
export interface WatchOptions {
  /** The data file. */
  path: string;
  /** Called once the file has changed, is complete, and has been quiet for `quiet` ms. */
  onChange: () => void;
  /** Called instead when the file is gone at that moment. */
  onMissing?: () => void;
  /** Called when the file has been quiet for `quiet` ms but its writer has not closed it yet. */
  onWriting?: () => void;
  /** Milliseconds without a further change before `onChange`. Default 200. */
  quiet?: number;
}

/**
 * Watches the data file through its directory, from the moment it is
 * called: start it before the first load, and a dump published during that
 * load is seen too.
 *
 * When is a changed file complete? Renamed over the path (the way to
 * publish: write elsewhere, then rename), it is complete at once. Written
 * in place (`cp`, `scp`, a shell redirect, an editor), it is complete when
 * its writer closes it: the kernel reports that (inotify's close-after-write,
 * which Deno reports as "access"; reading a file reports nothing). A writer
 * that stalls mid-copy keeps the file open, so a half-written dump is never
 * loaded, however long the stall. A burst of changes makes one call, once
 * the file has been quiet for a while; a file that disappears is reported
 * and waited for.
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
  const quiet = options.quiet ?? 200;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Written in place since the last sign that the file is complete. */
  let writing = false;
  /** Something changed since the last call. */
  let changed = false;
  const settle = async () => {
    timer = undefined;
    if (writing) {
      options.onWriting?.();
      return;
    }
    if (!changed) return;
    changed = false;
    try {
      await Deno.stat(path);
    } catch {
      options.onMissing?.();
      return;
    }
    options.onChange();
  };
  const watcher = watchEntry(path, (kind) => {
    switch (kind) {
      case "create":
      case "modify":
        // Being written where it lies: complete only once closed.
        writing = true;
        break;
      case "access":
        // Closed after writing (inotify's IN_CLOSE_WRITE).
        writing = false;
        break;
      case "rename":
      case "remove":
        // Replaced by a whole file, or gone: nothing is writing it here.
        writing = false;
        break;
      default:
        return;
    }
    changed = true;
    clearTimeout(timer);
    timer = setTimeout(settle, quiet);
  });
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

/**
 * Calls `onEvent` with the kind of each file-system event on `path`, watched
 * through its directory, so that a file renamed over it, or its removal, is
 * seen as well as writes to it; until the watcher returned is closed or the
 * directory goes away. Throws when the directory cannot be watched.
 *
 * @example
 * ```ts
 * import { watchEntry } from "./watch.ts";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * const seen = Promise.withResolvers<Deno.FsEvent["kind"]>();
 * const watcher = watchEntry(`${dir}/journal`, seen.resolve);
 * await Deno.writeTextFile(`${dir}/other`, "not watched\n");
 * await Deno.writeTextFile(`${dir}/journal`, "{}\n");
 * assert.equal(await seen.promise, "create");
 * watcher.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function watchEntry(
  path: string,
  onEvent: (kind: Deno.FsEvent["kind"]) => void,
): Deno.FsWatcher {
  const name = basename(path);
  const watcher = Deno.watchFs(dirname(resolve(path)), { recursive: false });
  (async () => {
    try {
      for await (const event of watcher) {
        if (event.paths.some((p) => basename(p) === name)) onEvent(event.kind);
      }
    } catch {
      // Closed, or the directory went away: nothing more to watch.
    }
  })();
  return watcher;
}
