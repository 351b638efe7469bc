/**
 * Reading one journal file from where it was left, a line at a time, and
 * applying its lines to the changes of a directory.
 *
 * @module
 */

import type { Changes } from "../directory/changes.ts";
import { JournalLine } from "./journal_line.ts";

const LF = 0x0a;
/** Bytes read at once; a line longer than this grows the buffer (up to {@linkcode MAX_LINE}). */
const READ_SIZE = 256 * 1024;
/** The longest journal line: a registration, wrapped. Longer is a bad line. */
const MAX_LINE = 16 * 1024 * 1024;

/** Where reading stopped for good, until the file changes: a bad line. */
export interface JournalFault {
  /** The 1-based line. */
  line: number;
  /** What is wrong with it. */
  reason: string;
}

/** What applying lines counts. */
export interface JournalTally {
  /** Lines applied. */
  applied: number;
  /** Lines at or below the sequence already applied (a replay, a rotated journal starting over). */
  skipped: number;
}

/**
 * One journal file, open, read from an offset on: the complete lines that
 * come are applied in order to {@linkcode JournalReader.changes}, those with
 * a sequence number above {@linkcode JournalReader.applied} only; a line
 * still being written waits for its end. Sequence numbers must grow along
 * the file: a line whose number does not is bad, like one that is not a
 * journal line, and reading stops there ({@linkcode JournalReader.fault}).
 *
 * @example
 * ```ts
 * import { Changes } from "../directory/changes.ts";
 * import { JournalReader } from "./journal_reader.ts";
 * import assert from "node:assert/strict";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, '{"seq":1,"put":{"addressOfRecord":"a1"}}\n{"seq":2,"del":"a0"}\n');
 * const changes = new Changes({ findInBase: () => -1 });
 * const reader = await JournalReader.open(path, changes, 0);
 * await reader.readAvailable(1 << 20);
 * assert.deepEqual([reader.applied, changes.count, reader.tally.applied], [2, 2, 2]);
 * reader.close();
 * await Deno.remove(path);
 * ```
 */
export class JournalReader {
  /** The changes lines are applied to. */
  readonly changes: Changes;
  /** The journal's path. */
  readonly path: string;
  /** The file's identity when opened (inode), to tell a replaced file. */
  readonly ino: number | null;
  /** The highest sequence number applied (or included in the dump). */
  applied: number;
  /** Lines read from the start of this file. */
  line = 0;
  /** Bytes of this file read: a file now shorter was truncated. */
  position = 0;
  /** The bad line reading stopped at, if it did. */
  fault: JournalFault | null = null;
  /** Where what is applied and skipped is counted, as it is. */
  tally: JournalTally;
  /** When the last line was applied (ms since the epoch), or 0. */
  appliedAt = 0;
  /** The sequence number of this file's first line, once read; 0 before. */
  firstSeq = 0;
  readonly #file: Deno.FsFile;
  readonly #parser = new JournalLine();
  #buf = new Uint8Array(READ_SIZE);
  /** Where the bytes of `#buf` not applied yet start. */
  #start = 0;
  /** Where the bytes read into `#buf` end. */
  #len = 0;
  /** Where the partial line at `#start` was searched to for its end: no `\n` before. */
  #searched = 0;
  /** The last read was short of its room: the file held no more then. */
  #atEnd = false;
  /** The sequence number of the last line of this file read. */
  #lastSeq = 0;

  private constructor(
    path: string,
    file: Deno.FsFile,
    ino: number | null,
    changes: Changes,
    applied: number,
    tally: JournalTally,
  ) {
    this.path = path;
    this.tally = tally;
    this.#file = file;
    this.ino = ino;
    this.changes = changes;
    this.applied = applied;
  }

  /**
   * Opens the journal at `path`, to apply to `changes` what comes above
   * sequence `applied`, counting lines in `tally`. Rejects when it cannot
   * be opened (gone, unreadable).
   */
  static async open(
    path: string,
    changes: Changes,
    applied: number,
    tally: JournalTally = { applied: 0, skipped: 0 },
  ): Promise<JournalReader> {
    const file = await Deno.open(path, { read: true });
    try {
      const { ino } = await file.stat();
      return new JournalReader(path, file, ino, changes, applied, tally);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /**
   * Applies the complete lines the file holds now, about `budget` bytes of
   * them at most; resolves to true when it stopped at the budget with more
   * to apply. What one read brings beyond the budget waits in the buffer for
   * the next call. Nothing after a bad line is applied.
   */
  async readAvailable(budget: number): Promise<boolean> {
    let used = 0;
    for (;;) {
      used += this.#applyLines(budget - used);
      if (this.fault !== null) return false;
      if (used >= budget) return true;
      if (this.#atEnd) {
        // The last read was short: the file's end, for now (asking again would only say so).
        this.#atEnd = false;
        return false;
      }
      const room = this.#room();
      const n = await this.#file.read(room);
      if (n === null || n === 0) return false;
      this.#len += n;
      this.position += n;
      this.#atEnd = n < room.length;
    }
  }

  /**
   * Applies every complete line the file holds now, reading at least once:
   * the old file's last lines before the follower turns to a new one. (A
   * call of {@linkcode readAvailable} after one that stopped at its budget
   * trusts that the file held no more when it was last read.)
   */
  async readToEnd(): Promise<void> {
    this.#atEnd = false;
    await this.readAvailable(Infinity);
  }

  /**
   * Applies the complete lines read and not applied yet (a look stopped at
   * its budget), without reading: what was read before the file was
   * truncated or its handle failed.
   */
  applyBuffered(): void {
    this.#applyLines(Infinity);
  }

  /** Like {@linkcode readToEnd}, synchronously: the last bytes before a swap. */
  readAvailableSync(): void {
    this.#atEnd = false;
    for (;;) {
      this.#applyLines(Infinity);
      if (this.fault !== null) return;
      const n = this.#file.readSync(this.#room());
      if (n === null || n === 0) return;
      this.#len += n;
      this.position += n;
    }
  }

  /** Closes the file. */
  close(): void {
    try {
      this.#file.close();
    } catch {
      // Already closed.
    }
  }

  /**
   * Room for the next read after the partial line, which is moved to the
   * buffer's start; a line longer than the buffer grows it.
   */
  #room(): Uint8Array {
    const buf = this.#buf;
    if (this.#start > 0) {
      buf.copyWithin(0, this.#start, this.#len);
      this.#len -= this.#start;
      this.#searched = Math.max(0, this.#searched - this.#start);
      this.#start = 0;
    }
    if (this.#len === buf.length) {
      this.#buf = new Uint8Array(Math.min(MAX_LINE + 1, buf.length * 2));
      this.#buf.set(buf);
    }
    return this.#buf.subarray(this.#len);
  }

  /**
   * Applies the complete lines in the buffer until about `budget` bytes of
   * them are; returns how many were. A partial line waits for the next read.
   */
  #applyLines(budget: number): number {
    const len = this.#len;
    // Up to `len`: bytes past it are an earlier read's.
    const buf = this.#buf.subarray(0, len);
    const first = this.#start;
    let pos = first;
    while (this.fault === null && pos - first < budget) {
      // A line arriving in many reads is searched once, not again from its start each time.
      const end = buf.indexOf(LF, Math.max(pos, this.#searched));
      if (end < 0) {
        this.#searched = len;
        break;
      }
      this.line++;
      if (!this.#apply(buf, pos, end)) break;
      pos = end + 1;
    }
    this.#start = pos;
    if (this.fault === null && len - pos > MAX_LINE) {
      this.line++;
      this.#stop(`a line over ${MAX_LINE} bytes`);
    }
    return pos - first;
  }

  /** Applies the line `buf[start, end)`; false (having stopped) when it is bad. */
  #apply(buf: Uint8Array, start: number, end: number): boolean {
    // A blank line changes nothing.
    let i = start;
    while (i < end && (buf[i] === 0x20 || buf[i] === 0x09 || buf[i] === 0x0d)) i++;
    if (i === end) return true;
    const parser = this.#parser;
    const seq = parser.readSequence(buf, start, end);
    if (seq < 0) return this.#stop(parser.error);
    if (seq <= this.#lastSeq) {
      return this.#stop(`"seq" ${seq} does not grow: the line before has ${this.#lastSeq}`);
    }
    this.#lastSeq = seq;
    if (this.firstSeq === 0) this.firstSeq = seq;
    if (seq <= this.applied) {
      this.tally.skipped++;
      return true;
    }
    if (!parser.read(buf, start, end)) return this.#stop(parser.error);
    if (parser.kind === "put") {
      this.changes.put(
        parser.key,
        parser.keyStart,
        parser.keyEnd,
        buf,
        parser.answerStart,
        parser.answerEnd,
      );
    } else {
      this.changes.delete(parser.key, parser.keyStart, parser.keyEnd);
    }
    this.applied = seq;
    this.tally.applied++;
    this.appliedAt = Date.now();
    return true;
  }

  #stop(reason: string): false {
    this.fault = { line: this.line, reason };
    return false;
  }
}
