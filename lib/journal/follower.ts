/**
 * Following a journal of registration changes (`--journal`): its lines are
 * applied to the directory being served as they are appended, within a poll
 * interval; a reload's new dump gets the journal's lines above its sequence
 * number before it is served.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { Changes } from "../directory/changes.ts";
import type { Directory } from "../directory/directory.ts";
import type { LiveDirectory } from "../directory/live.ts";
import { describe } from "../errors.ts";
import { nextTurn } from "../next_turn.ts";
import { watchEntry } from "../operations/watch.ts";
import type { Counters } from "../operations/counters.ts";
import { JournalReader } from "./journal_reader.ts";

const logger = getLogger(["sipdir", "journal"]);

/**
 * Bytes read and applied in one go before lookups get the thread back:
 * about a hundred lines, a millisecond or two (docs/performance.md, "The journal").
 */
const BUDGET = 64 * 1024;

/** Options of {@linkcode JournalFollower}. */
export interface JournalOptions {
  /** The journal file. */
  path: string;
  /** The directory served; the follower applies changes to it. */
  live: LiveDirectory;
  /** Where lines, skips and faults are counted. */
  counters: Counters;
  /**
   * Milliseconds between two looks at the journal while lines come: the
   * longest a line waits then. The kernel's file events (where they work: a
   * local file system) wake the follower at once for the first line after a
   * quiet second; while lines keep coming, it polls, whatever the writer's
   * pace or the number of its writes. Default 20.
   */
  pollInterval?: number;
  /**
   * Milliseconds between two looks once no line came for `quietAfter`, and
   * between two checks of the journal's identity (rotation). Default 250.
   */
  idlePollInterval?: number;
  /**
   * Milliseconds without a line after which the follower goes back to the
   * kernel's file events and its idle pace. Default 1000.
   */
  quietAfter?: number;
}

/** A reload's new directory with the journal applied, ready to swap in. */
export interface PreparedJournal {
  /**
   * Reads the lines appended since, synchronously, and says whether the new
   * directory may be served: not when it would go back behind the changes
   * served now (a dump older than the journal still holds). Returns the
   * reason to refuse, or "".
   */
  check(): string;
  /** The new directory is served from now on: follow the journal for it. */
  commit(): void;
  /** The reload does not happen: let go of what was read for it. */
  abandon(): void;
}

/**
 * Follows a journal file for the directory being served. Appended lines are
 * applied within `pollInterval`; a line being written (no line end yet)
 * waits for its end; the file replaced (rotated), truncated, or gone and
 * back is followed: the old file is read to its end first, then the new one
 * from its start, skipping what was applied already. A bad line stops
 * applying there (ERROR, counted) until the file changes.
 *
 * @example
 * ```ts
 * import { JournalFollower } from "./follower.ts";
 * import { LiveDirectory } from "../directory/live.ts";
 * import { DirectoryBuilder } from "../directory/directory.ts";
 * import { Counters } from "../operations/counters.ts";
 * import assert from "node:assert/strict";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, '{"seq":1,"put":{"addressOfRecord":"a1"}}\n');
 * const live = new LiveDirectory(new DirectoryBuilder().finish());
 * const follower = new JournalFollower({ path, live, counters: new Counters() });
 * await follower.start(0);
 * assert.ok(live.directory.get("a1"));
 * follower.close();
 * await Deno.remove(path);
 * ```
 */
export class JournalFollower {
  readonly #path: string;
  readonly #live: LiveDirectory;
  readonly #counters: Counters;
  readonly #pollInterval: number;
  readonly #idlePollInterval: number;
  readonly #quietAfter: number;
  /** When the last look read something (ms, `performance.now()`). */
  #lastRead = -Infinity;
  /** When the file's identity and size are looked at next. */
  #nextStat = 0;
  /** The file was created, renamed or removed since the last look at its identity. */
  #renamed = true;
  #watcher: Deno.FsWatcher | undefined;
  #reader: JournalReader | null = null;
  /** The sequence number applied when there is no reader (none yet, or the journal is gone). */
  #applied = 0;
  /** The sequence number of the dump served. */
  #dumpSequence = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** A look at the journal is running. */
  #busy: Promise<void> | null = null;
  /** A look was asked for while one ran. */
  #again = false;
  /** What the file looked like when reading stopped at a bad line: it must change first. */
  #faultedAt: string | null = null;
  /** Counts the directories adopted: a look that awaited across one must not replace its reader. */
  #generation = 0;
  /** A look failed: the next opens the journal again from its path. */
  #readFailed = false;
  /** The journal was missing at the last look (said once). */
  #missing = false;
  /** The last bad line logged and counted (file, line, reason): each once, however often read again. */
  #reportedFault = "";

  /** Creates a follower; {@linkcode JournalFollower.start} reads the journal. */
  constructor(options: JournalOptions) {
    this.#path = options.path;
    this.#live = options.live;
    this.#counters = options.counters;
    this.#pollInterval = options.pollInterval ?? 20;
    this.#idlePollInterval = Math.max(this.#pollInterval, options.idlePollInterval ?? 250);
    this.#quietAfter = options.quietAfter ?? 1000;
  }

  /** The highest sequence number served: the dump's, or the last journal line applied. */
  get applied(): number {
    return this.#reader?.applied ?? this.#applied;
  }

  /** Whether applying stopped at a bad line. */
  get faulted(): boolean {
    return this.#reader?.fault != null;
  }

  /** When the last line was applied (ms since the epoch), or 0. */
  get appliedAt(): number {
    return this.#reader?.appliedAt ?? 0;
  }

  /**
   * Applies the journal above `sequence` (the served dump's) to the served
   * directory, then follows it. Resolves once what the journal holds now is
   * applied.
   */
  async start(sequence: number): Promise<void> {
    const prepared = await this.prepare(this.#live.directory, sequence);
    prepared.check();
    prepared.commit();
  }

  /**
   * Applies the journal above `sequence` to `directory` (a reload's, not
   * served yet), reading it from its start; the current one keeps being
   * followed meanwhile. See {@linkcode PreparedJournal} for the swap.
   */
  async prepare(directory: Directory, sequence: number): Promise<PreparedJournal> {
    const changes = new Changes(directory);
    let reader: JournalReader | null = null;
    try {
      reader = await JournalReader.open(this.#path, changes, sequence);
      while (await reader.readAvailable(BUDGET)) await nextTurn();
    } catch (error) {
      reader?.close();
      reader = null;
      if (!(error instanceof Deno.errors.NotFound)) {
        logger.warn("cannot read the journal {path}: {error}", {
          path: this.#path,
          error: describe(error),
        });
      }
    }
    return {
      check: () => {
        reader?.readAvailableSync();
        const applied = reader?.applied ?? sequence;
        if (applied < this.applied) {
          return `its dump and the journal reach sequence ${applied}, behind the ` +
            `${this.applied} served now: serving it would undo changes`;
        }
        // An older dump than the one served is only complete with the journal
        // from just after it: otherwise the changes between are in neither.
        const first = reader?.firstSeq ?? 0;
        if (sequence < this.#dumpSequence && first > sequence + 1) {
          return `its dump is at sequence ${sequence}, older than the ${this.#dumpSequence} ` +
            `served, and the journal starts at ${first}: the changes between are in neither`;
        }
        return "";
      },
      commit: () => {
        directory.changes = changes;
        this.#dumpSequence = sequence;
        this.#adopt(reader, sequence);
      },
      abandon: () => reader?.close(),
    };
  }

  /** Stops following. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#unwatch();
    this.#reader?.close();
    this.#reader = null;
  }

  /** Follows with `reader` from now on (null: the journal is not there yet). */
  #adopt(reader: JournalReader | null, sequence: number): void {
    this.#generation++;
    const previous = this.#reader;
    if (previous !== null && previous !== reader) previous.close();
    this.#reader = reader;
    this.#applied = reader?.applied ?? Math.max(sequence, this.#applied);
    this.#faultedAt = null;
    if (reader !== null) {
      // What was read for the new directory counts once it is served; from now on, as it comes.
      const lines = this.#counters.journalLines;
      lines.applied += reader.tally.applied;
      lines.skipped += reader.tally.skipped;
      reader.tally = lines;
    }
    this.#reportFault(reader);
    this.#watch();
    this.#schedule(this.#pollInterval);
  }

  /**
   * Wakes the follower when the kernel reports the journal written, renamed
   * or removed (inotify, through its directory), instead of waiting for the
   * next poll: while the journal is quiet. Where that fails, polling alone
   * follows it.
   */
  #watch(): void {
    if (this.#watcher !== undefined || this.#closed) return;
    try {
      this.#watcher = watchEntry(this.#path, (kind) => {
        if (kind !== "modify" && kind !== "access") this.#renamed = true;
        this.#schedule(0);
      });
    } catch {
      // Not watchable (or the directory went away later): polling alone follows it.
    }
  }

  /**
   * Stops the kernel's reports while lines keep coming: the poll finds them
   * within its interval anyway, and a writer that appends line by line would
   * otherwise wake the follower (and the watcher's thread) once per line.
   */
  #unwatch(): void {
    try {
      this.#watcher?.close();
    } catch {
      // Already closed.
    }
    this.#watcher = undefined;
  }

  /** The next look in `delay` ms (sooner looks replace later ones); one runs at a time. */
  #schedule(delay: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      if (this.#busy !== null) {
        // Asked for while one runs: once more when it ends.
        this.#again = true;
        return;
      }
      this.#busy = this.#look().catch((error) => {
        logger.error("following the journal {path} failed: {error}\n{stack}", {
          path: this.#path,
          error: describe(error),
          stack: (error as Error)?.stack ?? "",
        });
        // Looked at again, at the idle pace (the watcher may be closed: nothing else would wake
        // it), through its path: the handle itself may be what failed (stale, on a network file
        // system).
        this.#readFailed = true;
        this.#schedule(this.#idlePollInterval);
      }).finally(() => {
        this.#busy = null;
        if (this.#again) {
          this.#again = false;
          this.#schedule(0);
        }
      });
    }, delay);
  }

  /**
   * One look: the lines appended; and, every idle poll interval or when the
   * kernel said so, whether the file was replaced, truncated or removed.
   */
  async #look(): Promise<void> {
    let more = false;
    const reader = this.#reader;
    const now = performance.now();
    if (
      reader === null || reader.fault !== null || this.#readFailed || this.#renamed ||
      now >= this.#nextStat
    ) {
      this.#renamed = false;
      this.#nextStat = now + this.#idlePollInterval;
      more = await this.#lookAtFile();
    } else {
      more = await this.#read(reader);
    }
    const active = performance.now() - this.#lastRead < this.#quietAfter;
    if (active) {
      this.#unwatch();
    } else if (this.#watcher === undefined) {
      this.#watch();
      // A line appended before the watcher started is found by a look after it.
      more = this.#watcher !== undefined;
    }
    this.#schedule(more ? 0 : active ? this.#pollInterval : this.#idlePollInterval);
  }

  /** The lines appended since the last read; true when there are more to read. */
  async #read(reader: JournalReader): Promise<boolean> {
    const line = reader.line;
    const more = await reader.readAvailable(BUDGET);
    if (reader.line !== line) this.#lastRead = performance.now();
    this.#reportFault(reader);
    return more;
  }

  /** A replaced, truncated or vanished file first, then the lines appended. */
  async #lookAtFile(): Promise<boolean> {
    let more = false;
    const stat = await Deno.stat(this.#path).catch(() => null);
    this.#noteMissing(stat === null);
    const reader = this.#reader;
    if (reader === null) {
      // No journal yet, or it was gone: follow it from its start once it is there.
      if (stat !== null) await this.#reopen();
    } else if (stat !== null && stat.ino !== reader.ino) {
      // Replaced (rotated): the old file's last lines first, unless it stopped at a bad one
      // or cannot be read.
      if (reader.fault === null && !this.#readFailed) await reader.readToEnd();
      this.#reportFault(reader);
      await this.#reopen();
    } else if (this.#readFailed) {
      await this.#reopen();
    } else if (reader.fault !== null) {
      // Stopped at a bad line: read it again once the file changed (the line fixed).
      if (stat !== null && fileState(stat) !== this.#faultedAt) await this.#reopen();
    } else if (stat !== null && stat.size < reader.position) {
      logger.warn("the journal {path} was truncated: reading it again from its start", {
        path: this.#path,
      });
      await this.#reopen();
    } else {
      more = await this.#read(reader);
    }
    if (this.#reader?.fault != null && this.#faultedAt === null) {
      // Looked at after the read: lines appended while it ran are no change.
      const after = await Deno.stat(this.#path).catch(() => null);
      this.#faultedAt = after === null ? "" : fileState(after);
    }
    return more;
  }

  /** Says once that the journal is gone, and again once it was back. */
  #noteMissing(missing: boolean): void {
    if (missing && !this.#missing) {
      logger.warn("the journal {path} is gone: following it again once it is back", {
        path: this.#path,
      });
    }
    this.#missing = missing;
  }

  /**
   * Reads the journal at its path from its start, skipping what was applied
   * (the lines the reader before had read are applied first).
   */
  async #reopen(): Promise<void> {
    const previous = this.#reader;
    const generation = this.#generation;
    if (previous !== null && previous.fault === null) previous.applyBuffered();
    const applied = this.applied;
    const changes = this.#live.directory.changes ??= new Changes(this.#live.directory);
    let reader: JournalReader;
    try {
      reader = await JournalReader.open(this.#path, changes, applied, this.#counters.journalLines);
    } catch {
      return;
    }
    if (this.#closed || this.#generation !== generation) {
      // Closed, or a reload's directory adopted (with its own reader) while it was being opened.
      reader.close();
      return;
    }
    this.#reader?.close();
    this.#reader = reader;
    this.#faultedAt = null;
    this.#readFailed = false;
    while (await this.#read(reader)) await nextTurn();
  }

  /** Logs and counts the bad line `reader` stopped at, once. */
  #reportFault(reader: JournalReader | null): void {
    if (reader === null) return;
    const counters = this.#counters;
    const fault = reader.fault;
    if (fault === null) return;
    const key = `${reader.ino}:${fault.line}:${fault.reason}`;
    if (key !== this.#reportedFault) {
      this.#reportedFault = key;
      counters.journalErrors++;
      logger.error(
        "{path}:{line}: {reason}: applying the journal stopped here, still serving what came " +
          "before; it goes on once the line is fixed or the journal replaced",
        { path: reader.path, line: fault.line, reason: fault.reason },
      );
    }
  }
}

/** What tells a file changed: identity, size and modification time. */
function fileState(stat: Deno.FileInfo): string {
  return `${stat.ino}:${stat.size}:${stat.mtime?.getTime()}`;
}
