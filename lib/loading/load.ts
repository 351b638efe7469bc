/**
 * Loading a registration dump (JSON Lines) into a {@linkcode Directory}.
 *
 * The file is read straight into a few large chunks that become the answer
 * store (a gzip file, told by its first bytes, is decompressed into them):
 * each accepted line is validated on its bytes, compacted in place if it has
 * insignificant white space, and its final `\n` is made part of it, so that
 * every answer is ready to be copied to a socket as is.
 *
 * A dump may start with a line that describes it instead of a registration:
 * `{"sequence":1042}` says which line of the journal (`--journal`) it
 * includes the changes up to, and `{"sequence":1042,"registrations":1000000}`
 * also how many registration lines follow, so that a dump cut short is
 * refused rather than served. A dump without it is at sequence 0.
 *
 * @module
 */

import { type Directory, DirectoryBuilder } from "../directory/directory.ts";
import { mappedBuffer } from "../directory/mapped_buffer.ts";
import { DataError } from "./data_error.ts";
import { aorProblem, compactInPlace, RecordScanner, unescapedString } from "./record.ts";
import { openSource } from "./source.ts";

export { DataError } from "./data_error.ts";

const LF = 0x0a;
const CR = 0x0d;

/** Chunk size: large enough that few are needed, small enough to allocate easily. */
const DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024;
/** Bytes read between two rounds of parsing, so that a reload shares the event loop. */
const READ_STEP = 4 * 1024 * 1024;

/** What a load found. */
export interface LoadReport {
  /** Distinct AORs in the directory. */
  entries: number;
  /** Lines whose AOR an earlier line already had (the later line won). */
  duplicates: number;
  /** Lines read, blank ones included. */
  lines: number;
  /** Bytes of data read (decompressed, for a gzip file). */
  bytes: number;
  /** Bytes of the file read: `bytes` for a plain dump, fewer for a gzip one. */
  fileBytes: number;
  /** Wall-clock milliseconds from open to ready. */
  ms: number;
  /** The journal sequence number the dump includes changes up to (its first line); 0 if it says none. */
  sequence: number;
}

/** A loaded directory and what it took. */
export interface LoadResult {
  /** The directory, ready to serve. */
  directory: Directory;
  /** Counts and timing of the load. */
  report: LoadReport;
}

/** Options of {@linkcode loadDirectory}. */
export interface LoadOptions {
  /** Path of the JSON Lines dump, plain or gzip-compressed. */
  path: string;
  /** Bytes per storage chunk (tests make it tiny to cross chunk edges). */
  chunkSize?: number;
  /**
   * Called after each block read with the bytes of the file done and its
   * size (compressed bytes, for a gzip file, so that the ratio is the share done).
   */
  onProgress?: (done: number, total: number) => void;
  /**
   * Read on the calling thread instead of Deno's I/O threads. Slower (no
   * reading ahead while parsing), but all the work, page faults included,
   * stays on one thread, whose priority the caller may have lowered. (A gzip
   * file is decompressed on the calling thread whatever this says.)
   */
  readOnThisThread?: boolean;
}

/**
 * Loads a registration dump. Rejects with a {@linkcode DataError} naming the
 * file and line when anything is wrong; a partial directory is never returned.
 *
 * @example
 * ```ts
 * import { loadDirectory } from "./load.ts";
 * import assert from "node:assert/strict";
 * const { directory, report } = await loadDirectory({ path: "data/regs" });
 * assert.deepEqual([report.entries, report.duplicates], [995, 5]);
 * assert.ok(directory.get("0142e2fa3543cb32bf000100620002"));
 * ```
 */
export async function loadDirectory(options: LoadOptions): Promise<LoadResult> {
  const { path } = options;
  const chunkSize = Math.max(options.chunkSize ?? DEFAULT_CHUNK_SIZE, 16);
  const started = performance.now();
  const source = await openSource(path, { readOnThisThread: options.readOnThisThread });
  try {
    // Plain or gzip, the size to expect (a gzip file records it).
    const total = source.expectedSize;
    // Typical registrations are 600 to 700 bytes: room for that many, to grow rarely.
    const loader = new LineLoader(path, Math.max(1024, Math.ceil(total / 700)));
    let done = 0;
    // Each chunk keeps one spare byte, for the `\n` of a last line that has none.
    let chunk = bytes(Math.min(chunkSize, total + 1) + 1);
    let index = loader.builder.addChunk(chunk);
    let fill = 0;
    let parsed = 0;
    const read = (from: number): Promise<number | null> =>
      source.read(chunk.subarray(from, Math.min(from + READ_STEP, chunk.length - 1)));
    // The next block is read while the last one is parsed: reads run on
    // another thread (for gzip, the compressed reads; decompressing cannot).
    let reading: Promise<number | null> | undefined = read(0);
    try {
      for (;;) {
        const n = await reading;
        reading = undefined;
        if (n === null) {
          loader.feed(chunk, index, parsed, fill, true);
          break;
        }
        fill += n;
        done += n;
        if (fill < chunk.length - 1) reading = read(fill);
        parsed = loader.feed(chunk, index, parsed, fill, false);
        options.onProgress?.(source.fileRead, Math.max(source.fileSize, source.fileRead));
        if (reading) continue;
        const carry = fill - parsed;
        const remaining = source.remaining() || READ_STEP;
        const next = bytes(Math.max(Math.min(chunkSize, carry + remaining), carry * 2) + 1);
        next.set(chunk.subarray(parsed, fill));
        if (parsed === 0) {
          // One line fills the chunk: nothing points into it yet, so grow it.
          loader.builder.replaceChunk(index, next);
        } else {
          index = loader.builder.addChunk(next);
        }
        chunk = next;
        fill = carry;
        parsed = 0;
        reading = read(fill);
      }
    } catch (error) {
      // A bad line can stop the loop with a read in flight; let it settle
      // before the file is closed under it, or read on below.
      await reading?.catch(() => {});
      // Corrupt gzip data can decompress into bad lines before the checksum
      // at its end gives it away: then the stream is to blame, not the line.
      if (error instanceof DataError && error.line > 0) await source.verify();
      throw error;
    }
    loader.checkCount();
    const directory = loader.builder.finish();
    return {
      directory,
      report: {
        entries: directory.size,
        duplicates: loader.duplicates,
        lines: loader.line,
        bytes: done,
        fileBytes: source.fileRead,
        ms: performance.now() - started,
        sequence: loader.sequence,
      },
    };
  } finally {
    await source.close();
  }
}

/** Storage for `length` bytes of dump, returned to the system once collected. */
function bytes(length: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(mappedBuffer(length), 0, length);
}

/** Turns the complete lines of chunks into directory entries. */
class LineLoader {
  readonly builder: DirectoryBuilder;
  readonly #scanner = new RecordScanner();
  readonly #path: string;
  /** Decoded keys of AORs written with escapes live in side chunks. */
  #keys = new Uint8Array(0);
  #keysIndex = -1;
  #keysFill = 0;
  line = 0;
  duplicates = 0;
  /** The sequence number the dump's first line declares; 0 if none. */
  sequence = 0;
  /** Registration lines read. */
  registrations = 0;
  /** How many registration lines the first line says follow, if it says. */
  #declared: number | undefined;

  constructor(path: string, expected: number) {
    this.#path = path;
    this.builder = new DirectoryBuilder(expected);
  }

  /**
   * Loads the complete lines of `chunk[start, end)` (and at EOF the last one,
   * even without `\n`); returns the offset of the first byte not consumed.
   */
  feed(chunk: Uint8Array, index: number, start: number, end: number, eof: boolean): number {
    // The partial line at the end waits for the next block; searching from
    // the back finds where it starts without scanning it twice.
    const limit = eof ? end : chunk.subarray(start, end).lastIndexOf(LF) + start + 1;
    let pos = start;
    while (pos < limit) {
      this.line++;
      pos = this.#loadLine(chunk, index, pos, end) + 1;
    }
    return Math.min(pos, end);
  }

  /** Loads the line at `start`; returns the offset of its `\n` (or `end`). */
  #loadLine(chunk: Uint8Array, index: number, start: number, end: number): number {
    if (
      this.line === 1 && chunk[start] === 0xef && chunk[start + 1] === 0xbb &&
      chunk[start + 2] === 0xbf
    ) {
      start += 3; // A UTF-8 byte order mark, as some editors write.
    }
    if (chunk[start] !== 0x7b) {
      let i = start;
      while (i < end && (chunk[i] === 0x20 || chunk[i] === 0x09 || chunk[i] === CR)) i++;
      if (i === end || chunk[i] === LF) return i;
    }
    const scanner = this.#scanner;
    if (!scanner.scan(chunk, start, end)) {
      if (this.line === 1) {
        const lf = chunk.subarray(start, end).indexOf(LF);
        const lineEnd = lf < 0 ? end : start + lf;
        if (this.#header(chunk, start, lineEnd)) return lineEnd;
      }
      this.#fail(scanner.error);
    }
    this.registrations++;
    const lineEnd = scanner.lineEnd;
    let answerEnd = scanner.contentEnd;
    if (!scanner.compact) {
      answerEnd = compactInPlace(chunk, start, answerEnd);
      scanner.scan(chunk, start, answerEnd);
    }
    // The answer is the line and a `\n`: over the CR or LF, or in the spare byte.
    chunk[answerEnd] = LF;
    let keyIndex = index;
    let keyOff = scanner.aorStart;
    let keyLen = scanner.aorEnd - scanner.aorStart;
    if (scanner.aorEscaped) {
      const key = unescapedString(chunk, keyOff, scanner.aorEnd);
      keyIndex = this.#storeKey(key);
      keyOff = this.#keysFill - key.length;
      keyLen = key.length;
      this.#checkKey(this.#keys, keyOff, keyOff + keyLen);
    } else {
      this.#checkKey(chunk, keyOff, keyOff + keyLen);
    }
    if (this.builder.add(keyIndex, keyOff, keyLen, index, start, answerEnd + 1 - start)) {
      this.duplicates++;
    }
    return lineEnd;
  }

  /**
   * Reads `chunk[start, end)`, the first line, as the dump's description
   * (`{"sequence":N}`, optionally with `"registrations":M`); false when it
   * is not one, so that it is reported as the registration it fails to be.
   */
  #header(chunk: Uint8Array, start: number, end: number): boolean {
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder().decode(chunk.subarray(start, end)));
    } catch {
      return false;
    }
    if (typeof header !== "object" || header === null || !("sequence" in header)) return false;
    const { sequence, registrations, ...others } = header as Record<string, unknown>;
    const count = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;
    if (Object.keys(others).length > 0) {
      this.#fail(
        `a first line with "sequence" describes the dump: unknown "${Object.keys(others)[0]}"`,
      );
    }
    if (!count(sequence)) this.#fail(`"sequence" must be a whole number from 0`);
    if (registrations !== undefined && !count(registrations)) {
      this.#fail(`"registrations" must be a whole number from 0`);
    }
    this.sequence = sequence as number;
    this.#declared = registrations as number | undefined;
    return true;
  }

  /** A dump whose first line says how many registrations follow has them all, or is refused. */
  checkCount(): void {
    if (this.#declared !== undefined && this.#declared !== this.registrations) {
      throw new DataError(
        this.#path,
        0,
        `has ${this.registrations} registrations where its first line says ${this.#declared}: ` +
          `cut short, or still being written?`,
      );
    }
  }

  /** Rejects AORs that no request line could carry. */
  #checkKey(buf: Uint8Array, start: number, end: number): void {
    const problem = aorProblem(buf, start, end);
    if (problem !== "") this.#fail(problem);
  }

  #storeKey(key: Uint8Array): number {
    if (this.#keysFill + key.length > this.#keys.length) {
      this.#keys = bytes(Math.max(64 * 1024, key.length));
      this.#keysIndex = this.builder.addChunk(this.#keys);
      this.#keysFill = 0;
    }
    this.#keys.set(key, this.#keysFill);
    this.#keysFill += key.length;
    return this.#keysIndex;
  }

  #fail(reason: string): never {
    throw new DataError(this.#path, this.line, reason);
  }
}
