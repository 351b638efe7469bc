/**
 * Reading one journal file from where it was left, a line at a time, and
 * applying its lines to the changes of a directory.
 *
 * @module
 */

import type { Changes } from "../directory/changes.ts";
import { JournalLine } from "./journal_line.ts";

const LF = 0x0a;
/** The read buffer's size; a line longer than this grows it (up to {@linkcode MAX_LINE}). */
const READ_SIZE = 256 * 1024;
/** The least asked of one read, however little of the budget is left. */
const MIN_READ = 4096;
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
  /** Bytes of this file consumed: where the next unread line starts. */
  offset = 0;
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
  /** Bytes in `#buf` not consumed yet (a partial line). */
  #len = 0;
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
   * Reads what the file holds now, at most about `budget` bytes, and applies
   * its complete lines; resolves to true when it stopped at the budget with
   * more to read. Nothing after a bad line is read.
   */
  async readAvailable(budget: number): Promise<boolean> {
    let read = 0;
    while (this.fault === null && read < budget) {
      const room = this.#room(budget - read);
      const n = await this.#file.read(room);
      if (n === null || n === 0) return false;
      read += n;
      this.#len += n;
      this.#applyLines();
      // Short of what was asked: the file's end, for now (asking again would only say so).
      if (n < room.length) return false;
    }
    return this.fault === null;
  }

  /** Like {@linkcode readAvailable}, to the end, synchronously: the last bytes before a swap. */
  readAvailableSync(): void {
    while (this.fault === null) {
      const n = this.#file.readSync(this.#room(READ_SIZE));
      if (n === null || n === 0) return;
      this.#len += n;
      this.#applyLines();
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
   * Room for about `want` bytes after the partial line, for the next read;
   * a line longer than the buffer grows it.
   */
  #room(want: number): Uint8Array {
    if (this.#len === this.#buf.length) {
      const bigger = new Uint8Array(Math.min(MAX_LINE + 1, this.#buf.length * 2));
      bigger.set(this.#buf);
      this.#buf = bigger;
    }
    return this.#buf.subarray(
      this.#len,
      Math.min(this.#buf.length, this.#len + Math.max(want, MIN_READ)),
    );
  }

  /** Applies the complete lines in the buffer; keeps a partial one for the next read. */
  #applyLines(): void {
    const buf = this.#buf;
    let pos = 0;
    while (this.fault === null) {
      const lf = buf.subarray(pos, this.#len).indexOf(LF);
      if (lf < 0) break;
      const end = pos + lf;
      this.line++;
      if (!this.#apply(buf, pos, end)) break;
      this.offset += end + 1 - pos;
      pos = end + 1;
    }
    if (this.fault === null && this.#len - pos > MAX_LINE) {
      this.line++;
      this.#stop(`a line over ${MAX_LINE} bytes`);
    }
    buf.copyWithin(0, pos, this.#len);
    this.#len -= pos;
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
