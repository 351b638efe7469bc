/**
 * The in-memory directory: AOR bytes → pre-encoded answer bytes.
 *
 * Answers stay where the loader read them, in a few large byte chunks; the
 * index is an open-addressing hash table over typed arrays holding offsets
 * into those chunks. Nothing is a JS object or string per entry, so there is
 * no `Map` size ceiling (2^24), little GC work, and a lookup hashes the
 * request's bytes where they lie in the read buffer, without decoding them.
 *
 * @module
 */

import type { Changes } from "./changes.ts";
import { mappedBuffer } from "./mapped_buffer.ts";

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * How many lookups {@linkcode Directory.warm} is given at once: more than a
 * pipelining client usually has in flight, few enough to stay in the CPU's
 * caches until they are answered.
 */
export const WARM_BATCH = 32;

// One entry: hash, chunk indexes (answer | key << 16), answer offset,
// answer length, key offset, key length.
const STRIDE = 6;
const MAX_CHUNKS = 0x10000;
/** Entry numbers from here on are changes' (see {@linkcode Directory.changes}): the base has fewer. */
const CHANGED = 0x40000000;

/**
 * Probes the table for the key `buf[start, end)` with hash `h`: returns the
 * slot holding it, or the empty slot where it would go.
 */
function probe(
  chunks: readonly Uint8Array[],
  entries: Uint32Array,
  slots: Int32Array,
  buf: Uint8Array,
  start: number,
  end: number,
  h: number,
): number {
  const mask = slots.length - 1;
  const len = end - start;
  let slot = h & mask;
  for (;;) {
    const id = slots[slot];
    if (id === 0) return slot;
    const e = (id - 1) * STRIDE;
    if (entries[e] === h && entries[e + 5] === len) {
      const key = chunks[entries[e + 1] >>> 16];
      const off = entries[e + 4] - start;
      let i = start;
      while (i < end && key[off + i] === buf[i]) i++;
      if (i === end) return slot;
    }
    slot = (slot + 1) & mask;
  }
}

/** FNV-1a over `buf[start, end)`. */
export function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i], FNV_PRIME);
  return h >>> 0;
}

/** The typed arrays a {@linkcode Directory} is made of. */
export interface DirectoryParts {
  /** Byte chunks holding keys and answers. */
  chunks: readonly Uint8Array[];
  /** Six numbers per entry: hash, chunk indexes, answer offset and length, key offset and length. */
  entries: Uint32Array;
  /** The hash table: entry number + 1, or 0 for an empty slot. */
  slots: Int32Array;
  /** Number of entries. */
  size: number;
}

/**
 * The buffers behind `parts`, each once, for `postMessage`'s transfer list:
 * transferring moves them to the other thread without a copy.
 *
 * @example
 * ```ts
 * import { Directory, DirectoryBuilder, transferList } from "./directory.ts";
 * import assert from "node:assert/strict";
 * const directory = new DirectoryBuilder().finish();
 * const { port1, port2 } = new MessageChannel();
 * const received = new Promise<MessageEvent>((resolve) => port2.onmessage = resolve);
 * port1.postMessage(directory.parts(), transferList(directory.parts()));
 * const copy = new Directory((await received).data);
 * assert.deepEqual(copy.size, 0);
 * port1.close();
 * port2.close();
 * ```
 */
export function transferList(parts: DirectoryParts): ArrayBuffer[] {
  const buffers = new Set([parts.entries.buffer as ArrayBuffer, parts.slots.buffer as ArrayBuffer]);
  for (const chunk of parts.chunks) buffers.add(chunk.buffer as ArrayBuffer);
  return [...buffers];
}

/**
 * A read-only AOR directory. Build one with {@linkcode DirectoryBuilder}, or
 * load one with `loadDirectory` from `load.ts`.
 *
 * @example
 * ```ts
 * import { DirectoryBuilder } from "./directory.ts";
 * import assert from "node:assert/strict";
 * const chunk = new TextEncoder().encode('{"addressOfRecord":"a1"}\n');
 * const builder = new DirectoryBuilder();
 * const c = builder.addChunk(chunk);
 * builder.add(c, 20, 2, c, 0, chunk.length);
 * const directory = builder.finish();
 * assert.equal(new TextDecoder().decode(directory.get("a1")), '{"addressOfRecord":"a1"}\n');
 * ```
 */
export class Directory {
  readonly #chunks: readonly Uint8Array[];
  readonly #entries: Uint32Array;
  readonly #slots: Int32Array;
  readonly #size: number;
  /** Bytes held by the loaded data: answers, keys and the index (not the changes since). */
  readonly byteLength: number;
  /**
   * What a journal changed since this directory was loaded, looked up
   * before the loaded data; null while nothing is followed. Set once, on the
   * thread that serves it.
   */
  changes: Changes | null = null;

  /**
   * Rebuilds a directory from {@linkcode Directory.parts}, e.g. after they
   * were transferred from the worker that loaded them.
   */
  constructor(parts: DirectoryParts) {
    this.#chunks = parts.chunks;
    this.#entries = parts.entries;
    this.#slots = parts.slots;
    this.#size = parts.size;
    let bytes = parts.entries.byteLength + parts.slots.byteLength;
    for (const chunk of parts.chunks) bytes += chunk.byteLength;
    this.byteLength = bytes;
  }

  /**
   * The typed arrays the directory is made of, to send to another thread
   * with {@linkcode transferList}. The directory must not be used after they
   * were transferred.
   */
  parts(): DirectoryParts {
    return { chunks: this.#chunks, entries: this.#entries, slots: this.#slots, size: this.#size };
  }

  /** Number of distinct AORs served: the loaded ones, with the changes since. */
  get size(): number {
    return this.#size + (this.changes?.sizeDelta ?? 0);
  }

  /**
   * Finds the AOR held in `buf[start, end)`; returns its entry number, or -1
   * when it is unknown. This is the hot path: no allocation.
   */
  find(buf: Uint8Array, start: number, end: number): number {
    const h = hashBytes(buf, start, end);
    const changes = this.changes;
    if (changes !== null) {
      const id = changes.find(buf, start, end, h);
      if (id >= 0) return changes.isDeleted(id) ? -1 : CHANGED + id;
    }
    return this.findInBase(buf, start, end, h);
  }

  /**
   * The loaded data's entry for `buf[start, end)` (with hash `h`, as
   * `hashBytes` gives it), or -1: what is there under the changes.
   */
  findInBase(
    buf: Uint8Array,
    start: number,
    end: number,
    h: number = hashBytes(buf, start, end),
  ): number {
    const slots = this.#slots;
    return slots[probe(this.#chunks, this.#entries, slots, buf, start, end, h)] - 1;
  }

  /**
   * The registration of entry `id` (its compact JSON, without the final
   * `\n`), as a view into the directory's storage: it must not be modified.
   */
  value(id: number): Uint8Array {
    if (id >= CHANGED) return this.changes!.value(id - CHANGED);
    const e = id * STRIDE;
    const off = this.#entries[e + 2];
    return this.#chunks[this.#entries[e + 1] & 0xffff].subarray(
      off,
      off + this.#entries[e + 3] - 1,
    );
  }

  /**
   * Reads, for each of the first `n` of `hashes`, the memory a lookup with
   * that hash reads first (its slot, its entry, the first byte of its key),
   * and returns a value made of them, for the caller to keep.
   *
   * Why: in a large directory most of a lookup's time is spent waiting for
   * those reads to come from memory, one lookup after the other. Issued back
   * to back for the requests of a pipelined read, the CPU waits for them
   * together (docs/performance.md, "Pipelined lookups").
   */
  warm(hashes: Uint32Array, n: number): number {
    const chunks = this.#chunks;
    const entries = this.#entries;
    const slots = this.#slots;
    const mask = slots.length - 1;
    let touched = 0;
    for (let i = 0; i < n; i++) {
      const id = slots[hashes[i] & mask];
      if (id === 0) continue;
      const e = (id - 1) * STRIDE;
      touched ^= chunks[entries[e + 1] >>> 16][entries[e + 4]];
    }
    return touched;
  }

  /**
   * Whether entry `id` is a journal change's, whose answer is only valid
   * until the next change is applied (see {@linkcode Changes.answer}); the
   * loaded data's answers stay where they are for as long as it is served.
   */
  isChange(id: number): boolean {
    return id >= CHANGED;
  }

  /**
   * The answer of entry `id`, with its final `\n`, as a view into the
   * directory's storage: it must not be modified, and a change's (see
   * {@linkcode Directory.isChange}) must be copied before the next change is
   * applied.
   */
  answer(id: number): Uint8Array {
    if (id >= CHANGED) return this.changes!.answer(id - CHANGED);
    const e = id * STRIDE;
    const off = this.#entries[e + 2];
    return this.#chunks[this.#entries[e + 1] & 0xffff].subarray(off, off + this.#entries[e + 3]);
  }

  /** The answer for `aor` (a copy, with its final `\n`), or undefined. */
  get(aor: string): Uint8Array | undefined {
    const key = new TextEncoder().encode(aor);
    const id = this.find(key, 0, key.length);
    return id < 0 ? undefined : this.answer(id).slice();
  }
}

/**
 * Collects entries whose key and answer bytes live in registered chunks, then
 * freezes them into a {@linkcode Directory}. A key added again replaces the
 * earlier answer (the last line of a dump wins).
 */
export class DirectoryBuilder {
  #chunks: Uint8Array[] = [];
  #entries: Uint32Array;
  #slots: Int32Array;
  #size = 0;

  /**
   * Creates an empty builder.
   * @param expected how many entries to make room for up front
   */
  constructor(expected = 1024) {
    let slots = 1024;
    while (slots < expected * 2) slots *= 2;
    this.#slots = int32Array(slots);
    this.#entries = uint32Array(Math.max(expected, 64) * STRIDE);
  }

  /** Number of distinct keys so far. */
  get size(): number {
    return this.#size;
  }

  /** Registers a chunk that keys and answers may point into; returns its index. */
  addChunk(chunk: Uint8Array): number {
    if (this.#chunks.length === MAX_CHUNKS) {
      throw new RangeError(`a directory holds at most ${MAX_CHUNKS} chunks`);
    }
    return this.#chunks.push(chunk) - 1;
  }

  /** Replaces chunk `index`, e.g. by a larger copy, before anything points into it. */
  replaceChunk(index: number, chunk: Uint8Array): void {
    this.#chunks[index] = chunk;
  }

  /**
   * Adds or replaces the entry for the key at `keyChunk[keyOff, +keyLen)`
   * whose answer is `ansChunk[ansOff, +ansLen)`. Returns true when the key
   * was already present (a duplicate).
   */
  add(
    keyChunk: number,
    keyOff: number,
    keyLen: number,
    ansChunk: number,
    ansOff: number,
    ansLen: number,
  ): boolean {
    const key = this.#chunks[keyChunk];
    const h = hashBytes(key, keyOff, keyOff + keyLen);
    const slot = probe(this.#chunks, this.#entries, this.#slots, key, keyOff, keyOff + keyLen, h);
    const id = this.#slots[slot];
    if (id !== 0) {
      this.#set((id - 1) * STRIDE, h, keyChunk, keyOff, keyLen, ansChunk, ansOff, ansLen);
      return true;
    }
    if ((this.#size + 1) * STRIDE > this.#entries.length) {
      const bigger = uint32Array(this.#entries.length * 2);
      bigger.set(this.#entries);
      this.#entries = bigger;
    }
    this.#set(this.#size * STRIDE, h, keyChunk, keyOff, keyLen, ansChunk, ansOff, ansLen);
    this.#slots[slot] = ++this.#size;
    // Keep the table at most half full so that probes stay short.
    if (this.#size * 2 > this.#slots.length) this.#grow();
    return false;
  }

  /** Freezes the builder; it must not be used afterwards. */
  finish(): Directory {
    const entries = uint32Array(this.#size * STRIDE);
    entries.set(this.#entries.subarray(0, this.#size * STRIDE));
    return new Directory({
      chunks: this.#chunks,
      entries,
      slots: this.#slots,
      size: this.#size,
    });
  }

  #set(
    e: number,
    h: number,
    keyChunk: number,
    keyOff: number,
    keyLen: number,
    ansChunk: number,
    ansOff: number,
    ansLen: number,
  ): void {
    const entries = this.#entries;
    entries[e] = h;
    entries[e + 1] = ansChunk | (keyChunk << 16);
    entries[e + 2] = ansOff;
    entries[e + 3] = ansLen;
    entries[e + 4] = keyOff;
    entries[e + 5] = keyLen;
  }

  #grow(): void {
    const slots = int32Array(this.#slots.length * 2);
    const mask = slots.length - 1;
    const entries = this.#entries;
    for (let id = 1; id <= this.#size; id++) {
      let slot = entries[(id - 1) * STRIDE] & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = id;
    }
    this.#slots = slots;
  }
}

function int32Array(length: number): Int32Array {
  return new Int32Array(mappedBuffer(length * 4), 0, length);
}

function uint32Array(length: number): Uint32Array {
  return new Uint32Array(mappedBuffer(length * 4), 0, length);
}
