/**
 * The registrations changed since a dump was loaded: what a journal puts
 * and deletes, over the dump's directory, which never changes.
 *
 * Like the directory, it holds no object or string per registration: keys
 * and answers are bytes in 1 MiB chunks, the index an open-addressing table
 * over typed arrays. A registration changed again leaves its old bytes
 * behind; a chunk that holds more of those than of live ones is emptied into
 * the newest chunk and given back (or kept as the next one), so that the
 * memory held stays within about twice what the live changes take, however
 * many changes come.
 *
 * @module
 */

import { hashBytes } from "./directory.ts";

/**
 * Answers and keys live in chunks of up to this size (a larger one gets a
 * chunk of its own); the first chunks are smaller, so that a few changes
 * cost little.
 */
const CHUNK = 1024 * 1024;
const FIRST_CHUNK = 64 * 1024;
/** Compaction starts once this much is held by changes that were changed again. */
const GARBAGE_FLOOR = 4 * CHUNK;
// One entry: hash, chunk, offset, key length, answer length (0: deleted), flags.
const STRIDE = 6;
/** What a chunk given back is replaced with, so that chunk numbers stay put. */
const EMPTY = new Uint8Array(0);
/** Flag: the directory under the changes has this key. */
const IN_BASE = 1;

/** What the changes are over: the loaded directory, which they never modify. */
export interface ChangedBase {
  /** The base's entry for `buf[start, end)` (whose `hashBytes` is `h`), or -1. */
  findInBase(buf: Uint8Array, start: number, end: number, h: number): number;
}

/**
 * Registrations put or deleted over a base directory. `find` tells a key it
 * has (changed or deleted) from one it does not know (ask the base).
 *
 * @example
 * ```ts
 * import { Changes } from "./changes.ts";
 * import assert from "node:assert/strict";
 * const base = { findInBase: () => -1 };
 * const changes = new Changes(base);
 * const bytes = (s: string) => new TextEncoder().encode(s);
 * const key = bytes("a1");
 * changes.put(key, 0, 2, bytes('{"addressOfRecord":"a1"}'), 0, 24);
 * const id = changes.find(key, 0, 2);
 * assert.equal(new TextDecoder().decode(changes.answer(id)), '{"addressOfRecord":"a1"}\n');
 * changes.delete(key, 0, 2);
 * assert.equal(changes.isDeleted(changes.find(key, 0, 2)), true);
 * assert.equal(changes.sizeDelta, 0);
 * ```
 */
export class Changes {
  readonly #base: ChangedBase;
  #chunks: Uint8Array[] = [];
  /**
   * A chunk emptied by compaction, kept for the next chunk needed: memory
   * already mapped and touched, where a new one would cost a page fault for
   * every 4 KiB written into it.
   */
  #spare: Uint8Array | null = null;
  /** Bytes in each chunk that live entries use. */
  #live: number[] = [];
  /** The entries written into each chunk, to find them when it is emptied (stale ones skipped). */
  #writers: number[][] = [];
  #current = -1;
  #fill = 0;
  #entries = new Uint32Array(64 * STRIDE);
  #slots = new Int32Array(128);
  #count = 0;
  /** Bytes in chunks no live entry uses any more. */
  #garbage = 0;
  /** Bytes in chunks that live entries use. */
  #liveTotal = 0;
  /** Registrations added (not in the base, present now) minus those removed (in the base, deleted now). */
  #sizeDelta = 0;
  /** The last {@linkcode Changes.#entry} created its entry: it has no bytes yet. */
  #created = false;

  /**
   * Starts with no change over `base`.
   * @param base the directory the changes are over
   */
  constructor(base: ChangedBase) {
    this.#base = base;
  }

  /** Distinct AORs changed (put or deleted). */
  get count(): number {
    return this.#count;
  }

  /** How the number of registrations served differs from the base's. */
  get sizeDelta(): number {
    return this.#sizeDelta;
  }

  /** Bytes held: chunks, entries and the index. */
  get byteLength(): number {
    let bytes = this.#entries.byteLength + this.#slots.byteLength;
    for (const chunk of this.#chunks) bytes += chunk.byteLength;
    return bytes + (this.#spare?.byteLength ?? 0);
  }

  /**
   * The change for `buf[start, end)` (with hash `h`, as `hashBytes` gives
   * it), or -1 when that key was never changed: then the base answers.
   */
  find(
    buf: Uint8Array,
    start: number,
    end: number,
    h: number = hashBytes(buf, start, end),
  ): number {
    return this.#slots[this.#probe(buf, start, end, h)] - 1;
  }

  /** Whether change `id` is a deletion. */
  isDeleted(id: number): boolean {
    return this.#entries[id * STRIDE + 4] === 0;
  }

  /**
   * The answer of change `id` (a put), with its final `\n`, as a view: not
   * to be modified, and only valid until the next change is applied, since
   * a chunk emptied by compaction takes new changes. Copy it to keep it.
   */
  answer(id: number): Uint8Array {
    const e = id * STRIDE;
    const entries = this.#entries;
    const at = entries[e + 2] + entries[e + 3];
    return this.#chunks[entries[e + 1]].subarray(at, at + entries[e + 4]);
  }

  /**
   * The registration of change `id` (a put), without its final `\n`, as a
   * view, valid as long as {@linkcode Changes.answer}'s.
   */
  value(id: number): Uint8Array {
    const answer = this.answer(id);
    return answer.subarray(0, answer.length - 1);
  }

  /** Puts the registration `answer[answerStart, answerEnd)` (compact JSON, no `\n`) for the AOR `key[keyStart, keyEnd)`. */
  put(
    key: Uint8Array,
    keyStart: number,
    keyEnd: number,
    answer: Uint8Array,
    answerStart: number,
    answerEnd: number,
  ): void {
    const id = this.#entry(key, keyStart, keyEnd);
    const e = id * STRIDE;
    const entries = this.#entries;
    const wasDeleted = entries[e + 4] === 0;
    const keyLength = keyEnd - keyStart;
    const length = answerEnd - answerStart + 1;
    const at = this.#place(id, keyLength + length, this.#created);
    const chunk = this.#chunks[entries[e + 1]];
    chunk.set(key.subarray(keyStart, keyEnd), at);
    chunk.set(answer.subarray(answerStart, answerEnd), at + keyLength);
    chunk[at + keyLength + length - 1] = 0x0a;
    entries[e + 2] = at;
    entries[e + 4] = length;
    if (wasDeleted) this.#sizeDelta++;
  }

  /** Deletes the AOR `key[keyStart, keyEnd)`. */
  delete(key: Uint8Array, keyStart: number, keyEnd: number): void {
    const id = this.#entry(key, keyStart, keyEnd);
    const e = id * STRIDE;
    const created = this.#created;
    // Already a deletion, with its key stored: nothing changes.
    if (!created && this.#entries[e + 4] === 0) return;
    const at = this.#place(id, keyEnd - keyStart, created);
    this.#chunks[this.#entries[e + 1]].set(key.subarray(keyStart, keyEnd), at);
    this.#entries[e + 2] = at;
    if (!created) {
      this.#entries[e + 4] = 0;
      this.#sizeDelta--;
    }
  }

  /**
   * The entry of a key; when it is the key's first change, a new one (see
   * {@linkcode Changes.#created}), counted as a deletion until its bytes are
   * placed and it is put.
   */
  #entry(key: Uint8Array, start: number, end: number): number {
    const h = hashBytes(key, start, end);
    const slot = this.#probe(key, start, end, h);
    this.#created = this.#slots[slot] === 0;
    if (!this.#created) return this.#slots[slot] - 1;
    const id = this.#count++;
    if ((id + 1) * STRIDE > this.#entries.length) {
      const bigger = new Uint32Array(this.#entries.length * 2);
      bigger.set(this.#entries);
      this.#entries = bigger;
    }
    const e = id * STRIDE;
    const inBase = this.#base.findInBase(key, start, end, h) >= 0;
    this.#entries.fill(0, e, e + STRIDE);
    this.#entries[e] = h;
    this.#entries[e + 3] = end - start;
    this.#entries[e + 5] = inBase ? IN_BASE : 0;
    // A new key is, for now, a deletion: absent, whatever the base says.
    if (inBase) this.#sizeDelta--;
    this.#slots[slot] = id + 1;
    if ((this.#count + 1) * 2 > this.#slots.length) this.#grow();
    return id;
  }

  /**
   * Room for `length` bytes of entry `id`'s new bytes in the newest chunk;
   * returns where, and sets the entry's chunk. Its old bytes, unless it was
   * just `created`, become garbage.
   */
  #place(id: number, length: number, created: boolean): number {
    const e = id * STRIDE;
    const entries = this.#entries;
    if (!created) {
      const old = entries[e + 3] + entries[e + 4];
      this.#live[entries[e + 1]] -= old;
      this.#liveTotal -= old;
      this.#garbage += old;
    }
    if (this.#current < 0 || this.#fill + length > this.#chunks[this.#current].length) {
      this.#newChunk(length);
    }
    const at = this.#fill;
    this.#fill += length;
    entries[e + 1] = this.#current;
    this.#live[this.#current] += length;
    this.#liveTotal += length;
    this.#writers[this.#current].push(id);
    if (this.#garbage > GARBAGE_FLOOR && this.#garbage > this.#liveTotal) this.#compact();
    return at;
  }

  #newChunk(atLeast: number): void {
    // What the chunk being left did not use is lost to it: garbage, which its emptying gives back.
    if (this.#current >= 0) this.#garbage += this.#chunks[this.#current].length - this.#fill;
    const size = Math.max(Math.min(CHUNK, Math.max(FIRST_CHUNK, this.#liveTotal)), atLeast);
    let chunk = this.#spare;
    if (chunk !== null && chunk.length >= size) this.#spare = null;
    else chunk = new Uint8Array(size);
    // Reuse the slot of a chunk given back, so that chunk numbers stay few.
    let index = this.#chunks.findIndex((c) => c.length === 0);
    if (index < 0) index = this.#chunks.length;
    this.#chunks[index] = chunk;
    this.#live[index] = 0;
    this.#writers[index] = [];
    this.#current = index;
    this.#fill = 0;
  }

  /**
   * Empties the chunk with the fewest live bytes into the newest one and
   * gives it back: each pass frees at least half a chunk, as garbage
   * outweighs live bytes.
   */
  #compact(): void {
    let worst = -1;
    for (let c = 0; c < this.#chunks.length; c++) {
      if (c === this.#current || this.#chunks[c].length === 0) continue;
      if (worst < 0 || this.#live[c] < this.#live[worst]) worst = c;
    }
    if (worst < 0) return;
    const from = this.#chunks[worst];
    const movers = this.#writers[worst];
    this.#garbage -= from.length - this.#live[worst];
    this.#live[worst] = 0;
    const entries = this.#entries;
    for (const id of movers) {
      const e = id * STRIDE;
      // Stale: the entry was written again since, elsewhere.
      if (entries[e + 1] !== worst) continue;
      const length = entries[e + 3] + entries[e + 4];
      const offset = entries[e + 2];
      if (this.#current < 0 || this.#fill + length > this.#chunks[this.#current].length) {
        this.#newChunk(length);
      }
      this.#chunks[this.#current].set(from.subarray(offset, offset + length), this.#fill);
      entries[e + 1] = this.#current;
      entries[e + 2] = this.#fill;
      this.#fill += length;
      this.#live[this.#current] += length;
      this.#writers[this.#current].push(id);
    }
    // Given back only now: while entries move, a new chunk must not take its slot, or an entry
    // written there twice (once stale) would be moved again, from its new place.
    this.#chunks[worst] = EMPTY;
    this.#writers[worst] = [];
    // Kept unless it is a registration's chunk of its own, larger than usual.
    if (from.length <= CHUNK && from.length > (this.#spare?.length ?? 0)) this.#spare = from;
  }

  /** The slot of key `buf[start, end)` with hash `h`, or the empty slot where it would go. */
  #probe(buf: Uint8Array, start: number, end: number, h: number): number {
    const slots = this.#slots;
    const entries = this.#entries;
    const mask = slots.length - 1;
    const length = end - start;
    let slot = h & mask;
    for (;;) {
      const id = slots[slot];
      if (id === 0) return slot;
      const e = (id - 1) * STRIDE;
      if (entries[e] === h && entries[e + 3] === length) {
        const chunk = this.#chunks[entries[e + 1]];
        const at = entries[e + 2];
        let i = 0;
        while (i < length && chunk[at + i] === buf[start + i]) i++;
        if (i === length) return slot;
      }
      slot = (slot + 1) & mask;
    }
  }

  #grow(): void {
    const slots = new Int32Array(this.#slots.length * 2);
    const mask = slots.length - 1;
    for (let id = 1; id <= this.#count; id++) {
      let slot = this.#entries[(id - 1) * STRIDE] & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = id;
    }
    this.#slots = slots;
  }
}
