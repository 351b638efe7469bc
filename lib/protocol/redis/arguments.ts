/**
 * The arguments a Redis command must keep until it ends, and the commands a
 * `MULTI` queues, held compactly and counted as the memory they take.
 *
 * @module
 */

/** Memory counted for each argument beside its bytes: its end offset and a share of the views made at run time. */
export const ARGUMENT_OVERHEAD = 16;
/** Memory counted for each queued command beside its arguments: its objects and their headers. */
export const QUEUED_OVERHEAD = 256;

const EMPTY = new Uint8Array(0);

/**
 * A command's arguments as they arrive, in one buffer that grows as needed:
 * one allocation per doubling, not an object per argument.
 *
 * @example
 * ```ts
 * import { HeldArguments } from "./arguments.ts";
 * import assert from "node:assert/strict";
 * const held = new HeldArguments();
 * const bytes = new TextEncoder().encode("CONFIGGETsave");
 * held.push(bytes, 0, 6);
 * held.push(bytes, 6, 9);
 * held.push(bytes, 9, 13);
 * assert.deepEqual(held.list().map((a) => new TextDecoder().decode(a)), ["CONFIG", "GET", "save"]);
 * held.clear();
 * assert.equal(held.count, 0);
 * ```
 */
export class HeldArguments {
  #bytes: Uint8Array = EMPTY;
  #used = 0;
  #ends: number[] = [];

  /** Arguments held. */
  get count(): number {
    return this.#ends.length;
  }

  /** Memory held now: the buffer and the offsets. */
  get memory(): number {
    return this.#bytes.length + this.#ends.length * ARGUMENT_OVERHEAD;
  }

  /** What holding `length` more bytes as one argument would bring {@linkcode memory} to, at most. */
  memoryWith(length: number): number {
    const needed = this.#used + length;
    const size = needed <= this.#bytes.length
      ? this.#bytes.length
      : Math.max(needed, this.#used * 2);
    return size + (this.#ends.length + 1) * ARGUMENT_OVERHEAD;
  }

  /** Holds `buf[start, end)` as the next argument (copied). */
  push(buf: Uint8Array, start: number, end: number): void {
    const length = end - start;
    if (this.#used + length > this.#bytes.length) {
      const bigger = new Uint8Array(Math.max(this.#used + length, this.#used * 2, 64));
      bigger.set(this.#bytes.subarray(0, this.#used));
      this.#bytes = bigger;
    }
    this.#bytes.set(buf.subarray(start, end), this.#used);
    this.#used += length;
    this.#ends.push(this.#used);
  }

  /** The arguments, as views into the buffer: valid until the next {@linkcode clear}. */
  list(): Uint8Array[] {
    return views(this.#bytes, this.#ends);
  }

  /**
   * Forgets the arguments, buffer and all: what an idle connection holds is
   * nothing (commands that keep arguments are not the hot path).
   */
  clear(): void {
    this.#bytes = EMPTY;
    this.#used = 0;
    this.#ends = [];
  }
}

/** A command queued by `MULTI`: its arguments' bytes back to back, and where each ends. */
export class QueuedCommand {
  /** The arguments' bytes. */
  readonly bytes: Uint8Array;
  /** The end offset of each argument in {@linkcode bytes}. */
  readonly ends: Int32Array;

  /**
   * Wraps queued arguments.
   * @param bytes the arguments' bytes, back to back
   * @param ends where each argument ends
   */
  constructor(bytes: Uint8Array, ends: Int32Array) {
    this.bytes = bytes;
    this.ends = ends;
  }

  /** Copies `args` into one. */
  static of(args: readonly Uint8Array[]): QueuedCommand {
    const ends = new Int32Array(args.length);
    let length = 0;
    args.forEach((arg, i) => ends[i] = length += arg.length);
    const bytes = new Uint8Array(length);
    args.forEach((arg, i) => bytes.set(arg, ends[i] - arg.length));
    return new QueuedCommand(bytes, ends);
  }

  /** The memory it is counted as. */
  get memory(): number {
    return this.bytes.length + this.ends.length * ARGUMENT_OVERHEAD + QUEUED_OVERHEAD;
  }

  /** The arguments, as views. */
  list(): Uint8Array[] {
    return views(this.bytes, this.ends);
  }
}

/** Views of the arguments of `bytes` that end at `ends`. */
function views(bytes: Uint8Array, ends: ArrayLike<number>): Uint8Array[] {
  const args: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    args.push(bytes.subarray(start, ends[i]));
    start = ends[i];
  }
  return args;
}

/** The memory a command's arguments will be counted as once queued. */
export function queuedMemory(args: readonly Uint8Array[]): number {
  let bytes = QUEUED_OVERHEAD;
  for (const arg of args) bytes += arg.length + ARGUMENT_OVERHEAD;
  return bytes;
}
