/**
 * The bytes of a dump file, plain or gzip-compressed, read into buffers the
 * caller owns.
 *
 * A file is gzip when its first two bytes are gzip's magic (0x1f 0x8b),
 * whatever its name: a dump renamed, or a plain one named `.gz`, loads all
 * the same. JSON Lines cannot start with 0x1f, so no plain dump is mistaken
 * for one.
 *
 * @module
 */

import { DataError, describeFsError } from "./data_error.ts";

const GZIP_MAGIC_1 = 0x1f;
const GZIP_MAGIC_2 = 0x8b;
/** Header (10), the smallest deflate stream (2) and the trailer (8). */
const GZIP_MIN_SIZE = 20;
/** Compressed bytes read from the file at a time, as the plain loader reads. */
const GZIP_READ = 1024 * 1024;
/**
 * Compressed bytes handed to the decompressor at a time. Deno decompresses
 * each write into a growing vector and copies it out whole: about 150 KiB
 * out of 32 KiB in stays in the CPU's cache, where larger steps do not
 * (docs/performance.md, "Loading and reloading").
 */
const GZIP_STEP = 32 * 1024;

/** Options of {@linkcode openSource}. */
export interface SourceOptions {
  /**
   * Read the file with blocking calls on the calling thread rather than on
   * Deno's I/O threads (see `LoadOptions.readOnThisThread`). Decompression
   * runs on the calling thread either way.
   */
  readOnThisThread?: boolean;
  /** Compressed bytes per step of decompression (tests make it tiny). */
  gzipStep?: number;
  /** Compressed bytes per read of the file (tests make it tiny). */
  gzipRead?: number;
}

/** The bytes of a dump, decompressed if the file is gzip. */
export interface ByteSource {
  /** What the file's first bytes say it holds. */
  readonly format: "plain" | "gzip";
  /** The file's size in bytes (0 when it has none, like a pipe). */
  readonly fileSize: number;
  /** Bytes of the file read so far: what progress is measured in. */
  readonly fileRead: number;
  /**
   * How many bytes the source should yield in all: the file size, or for
   * gzip the size its trailer records (modulo 4 GiB, as gzip keeps it).
   * A hint for sizing storage; 0 when unknown.
   */
  readonly expectedSize: number;
  /** Bytes yielded so far. */
  readonly yielded: number;
  /** A guess of the bytes still to come; 0 when there is no telling. */
  remaining(): number;
  /**
   * Fills the start of `into` with the next bytes; resolves to how many, or
   * to null at the end. Rejects with a {@linkcode DataError} naming the file
   * when it cannot be read or does not decompress.
   */
  read(into: Uint8Array): Promise<number | null>;
  /**
   * Reads the rest, discarding it, to learn whether the file is sound:
   * rejects with the {@linkcode DataError} of a corrupt gzip stream. A plain
   * file has no checksum to check: it resolves at once.
   */
  verify(): Promise<void>;
  /** Stops reading, waits for any read in flight, and closes the file. */
  close(): Promise<void>;
}

/**
 * Opens a dump; rejects with a {@linkcode DataError} if it cannot be opened
 * or is a directory.
 *
 * @example
 * ```ts
 * import { openSource } from "./source.ts";
 * import assert from "node:assert/strict";
 * const path = await Deno.makeTempFile();
 * const text = '{"addressOfRecord":"a"}\n';
 * const gzip = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
 * await Deno.writeFile(path, gzip);
 * const source = await openSource(path);
 * const into = new Uint8Array(100);
 * let fill = 0;
 * for (let n; (n = await source.read(into.subarray(fill))) !== null;) fill += n;
 * await source.close();
 * assert.deepEqual(source.format, "gzip");
 * assert.deepEqual(new TextDecoder().decode(into.subarray(0, fill)), text);
 * assert.deepEqual(source.fileRead, source.fileSize);
 * await Deno.remove(path);
 * ```
 */
export async function openSource(path: string, options: SourceOptions = {}): Promise<ByteSource> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    throw new DataError(path, 0, `cannot open: ${describeFsError(error)}`, { cause: error });
  }
  const sync = options.readOnThisThread ?? false;
  const read = async (block: Uint8Array): Promise<number | null> => {
    try {
      return sync ? file.readSync(block) : await file.read(block);
    } catch (error) {
      throw new DataError(path, 0, `cannot read: ${describeFsError(error)}`, { cause: error });
    }
  };
  try {
    let size = 0;
    try {
      const info = await file.stat();
      if (info.isDirectory) throw new DataError(path, 0, "is a directory");
      size = info.size;
    } catch (error) {
      if (error instanceof DataError) throw error;
      throw new DataError(path, 0, `cannot read: ${describeFsError(error)}`, { cause: error });
    }
    // Sniffed with a read rather than a seek back, so that pipes work too:
    // the bytes are handed on as the start of the data.
    const head = new Uint8Array(2);
    let headFill = 0;
    while (headFill < head.length) {
      const n = await read(head.subarray(headFill));
      if (n === null) break;
      headFill += n;
    }
    const prefix = head.subarray(0, headFill);
    if (headFill === 2 && head[0] === GZIP_MAGIC_1 && head[1] === GZIP_MAGIC_2) {
      const expected = await gzipTrailerSize(file, size, sync);
      const step = Math.max(options.gzipStep ?? GZIP_STEP, 1);
      const block = Math.max(options.gzipRead ?? GZIP_READ, step, prefix.length);
      return new GzipSource({ path, file, read, prefix, size, expected, step, block });
    }
    return new PlainSource(file, read, prefix, size);
  } catch (error) {
    file.close();
    throw error;
  }
}

/**
 * The uncompressed size that a gzip file's last four bytes record (ISIZE,
 * little-endian, modulo 2³²); 0 if the file is too short or cannot seek.
 * It is exact for the one-member files that gzip writes, below 4 GiB.
 */
async function gzipTrailerSize(file: Deno.FsFile, size: number, sync: boolean): Promise<number> {
  if (size < GZIP_MIN_SIZE) return 0;
  try {
    const trailer = new Uint8Array(4);
    let fill = 0;
    if (sync) {
      file.seekSync(-4, Deno.SeekMode.End);
      for (let n; fill < 4 && (n = file.readSync(trailer.subarray(fill))) !== null;) fill += n;
      file.seekSync(2, Deno.SeekMode.Start);
    } else {
      await file.seek(-4, Deno.SeekMode.End);
      for (let n; fill < 4 && (n = await file.read(trailer.subarray(fill))) !== null;) fill += n;
      await file.seek(2, Deno.SeekMode.Start);
    }
    return fill === 4 ? new DataView(trailer.buffer).getUint32(0, true) : 0;
  } catch {
    // Not seekable after all: no hint, and nothing read past the magic.
    return 0;
  }
}

type ReadFile = (block: Uint8Array) => Promise<number | null>;

/** A plain file: read straight into the caller's buffer. */
class PlainSource implements ByteSource {
  readonly format = "plain";
  readonly fileSize: number;
  readonly expectedSize: number;
  fileRead = 0;
  readonly #file: Deno.FsFile;
  readonly #read: ReadFile;
  /** The sniffed first bytes, not yet handed on. */
  #prefix: Uint8Array;

  constructor(file: Deno.FsFile, read: ReadFile, prefix: Uint8Array, size: number) {
    this.#file = file;
    this.#read = read;
    this.#prefix = prefix;
    this.fileSize = size;
    this.expectedSize = size;
  }

  get yielded(): number {
    return this.fileRead;
  }

  remaining(): number {
    return this.fileSize > this.fileRead ? this.fileSize - this.fileRead : 0;
  }

  async read(into: Uint8Array): Promise<number | null> {
    let given = 0;
    if (this.#prefix.length > 0) {
      given = Math.min(this.#prefix.length, into.length);
      into.set(this.#prefix.subarray(0, given));
      this.#prefix = this.#prefix.subarray(given);
      // The rest of the first block comes in the same call, as one read did before.
      if (given === into.length) return this.#count(given);
    }
    const n = await this.#read(given === 0 ? into : into.subarray(given));
    if (n === null) return given === 0 ? null : this.#count(given);
    return this.#count(given + n);
  }

  verify(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#file.close();
    return Promise.resolve();
  }

  #count(n: number): number {
    this.fileRead += n;
    return n;
  }
}

/**
 * A gzip file, through `DecompressionStream`. A pump feeds it compressed
 * blocks as the reader asks for output; the stream's backpressure keeps it
 * one block ahead at most. Deno decompresses inside the stream's transform,
 * a synchronous call on this thread: only the file reads can be elsewhere.
 */
class GzipSource implements ByteSource {
  readonly format = "gzip";
  readonly fileSize: number;
  readonly expectedSize: number;
  fileRead: number;
  yielded = 0;
  readonly #path: string;
  readonly #file: Deno.FsFile;
  readonly #read: ReadFile;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #pump: Promise<void>;
  /** Why the pump stopped, if it failed: what the reader must report. */
  #failure: DataError | undefined;
  /** Decompressed bytes not yet handed on. */
  #pending: Uint8Array = new Uint8Array(0);
  /** Decompressed bytes that came out of the stream. */
  #decoded = 0;

  constructor(init: GzipInit) {
    this.#path = init.path;
    this.#file = init.file;
    this.#read = init.read;
    this.fileSize = init.size;
    this.expectedSize = init.expected;
    this.fileRead = init.prefix.length;
    const stream = new DecompressionStream("gzip");
    this.#reader = stream.readable.getReader();
    this.#pump = this.#run(stream.writable.getWriter(), init);
  }

  remaining(): number {
    // The trailer's size, until the data outgrows it (past 4 GiB); then the
    // compression ratio so far.
    const byTrailer = this.expectedSize - this.yielded;
    const byRatio = this.fileRead === 0 ? 0 : this.#pending.length +
      Math.ceil(Math.max(this.fileSize - this.fileRead, 0) * this.#decoded / this.fileRead);
    return Math.max(byTrailer, byRatio, 0);
  }

  async read(into: Uint8Array): Promise<number | null> {
    // Fills `into` whole, as a file read would: the loader parses and
    // reports progress once per block, not once per decompression step.
    let n = 0;
    while (n < into.length) {
      if (this.#pending.length === 0) {
        const next = await this.#next();
        if (next === null) break;
        this.#pending = next;
      }
      const take = Math.min(into.length - n, this.#pending.length);
      into.set(this.#pending.subarray(0, take), n);
      this.#pending = this.#pending.subarray(take);
      n += take;
    }
    this.yielded += n;
    return n === 0 ? null : n;
  }

  async verify(): Promise<void> {
    this.#pending = new Uint8Array(0);
    while (await this.#next() !== null);
  }

  /** The next output of the decompressor, or null at the end. */
  async #next(): Promise<Uint8Array | null> {
    let next: ReadableStreamReadResult<Uint8Array>;
    try {
      next = await this.#reader.read();
    } catch (error) {
      // The pump saw the failure too, and knows at which step.
      await this.#pump;
      throw this.#failure ?? gzipError(this.#path, error, false);
    }
    if (next.done) return null;
    this.#decoded += next.value.length;
    return next.value;
  }

  async close(): Promise<void> {
    // Stops the pump at its next write; a file read in flight ends first.
    await this.#reader.cancel().catch(() => {});
    await this.#pump;
    this.#file.close();
  }

  async #run(writer: WritableStreamDefaultWriter<BufferSource>, init: GzipInit): Promise<void> {
    const { prefix, step } = init;
    // Two blocks: the next is read (on an I/O thread, unless reads are
    // synchronous) while this one is decompressed. A block is free again
    // once its last write resolves: the transform has consumed it by then.
    let block = new Uint8Array(init.block);
    let spare = new Uint8Array(init.block);
    block.set(prefix);
    let fill = prefix.length;
    let next: Promise<number | null> | undefined;
    let closing = false;
    try {
      let n = await this.#read(block.subarray(fill));
      for (;;) {
        if (n !== null) {
          fill += n;
          this.fileRead += n;
          next = this.#read(spare);
        }
        for (let at = 0; at < fill; at += step) {
          await writer.write(block.subarray(at, Math.min(at + step, fill)));
        }
        if (n === null) {
          closing = true;
          await writer.close();
          return;
        }
        [block, spare] = [spare, block];
        fill = 0;
        n = await next!;
        next = undefined;
      }
    } catch (error) {
      this.#failure = error instanceof DataError ? error : gzipError(this.#path, error, closing);
      // Ends the reader's wait, if the stream is not failed already.
      await writer.abort(this.#failure).catch(() => {});
    } finally {
      // The file is closed after the pump ends: not under a read.
      await next?.catch(() => {});
    }
  }
}

/** What a {@linkcode GzipSource} starts from. */
interface GzipInit {
  path: string;
  file: Deno.FsFile;
  read: ReadFile;
  /** The sniffed first bytes: the start of the stream. */
  prefix: Uint8Array;
  size: number;
  expected: number;
  /** Bytes per write to the decompressor. */
  step: number;
  /** Bytes per read of the file. */
  block: number;
}

/**
 * The decompressor's complaint as a {@linkcode DataError}. Its messages come
 * from Rust's flate2 and say little about the file, hence the words around.
 */
function gzipError(path: string, error: unknown, atEnd: boolean): DataError {
  const message = error instanceof Error ? error.message : String(error);
  let reason = `not a valid gzip stream: ${message}`;
  if (/failed to write whole buffer/.test(message)) {
    // flate2's decoder takes no input past the end of the first member.
    reason = "not a valid gzip stream: data after its end (concatenated gzip files are " +
      "not supported: decompress and compress again as one)";
  } else if (atEnd) {
    reason = `not a valid gzip stream: truncated or corrupt (${message})`;
  }
  return new DataError(path, 0, reason, { cause: error });
}
