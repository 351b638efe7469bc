/**
 * Read buffers for connections that pipeline: lent for as long as a read
 * holds more than a connection's own small buffer, then given back.
 *
 * @module
 */

/**
 * What each connection reads into while its requests fit: every idle
 * connection has a read pending into it, so it is what an idle connection
 * costs. Requests are small (an AOR, a `GET key`): 16 pipelined ones fit.
 */
export const OWN_READ_BUFFER = 1024;
/** The most a connection's own buffer grows to, for a client that keeps pipelining. */
export const MAX_OWN_READ_BUFFER = 16 * 1024;
/**
 * Reads in a row that must fill a connection's own buffer before it is
 * doubled: a client that keeps pipelining more, not one burst.
 */
export const GROW_OWN_AFTER = 8;
/** Reads in a row using under a quarter of a grown own buffer before it is halved. */
export const SHRINK_OWN_AFTER = 64;
/** A lent buffer's size: a deep pipeline is read, answered and consumed in pieces of this. */
export const LENT_READ_BUFFER = 64 * 1024;
/** Lent buffers kept for the next borrower (a connection holds one from its read to its answer, and one pass of the event loop may serve 64): at most 4 MiB idle. */
const KEPT = 64;

/**
 * Larger read buffers, shared by every connection of a server. A
 * connection borrows one when a read fills its own buffer (a pipelining
 * client, or a request longer than 1 KiB) and gives it back once what is
 * left of its input fits its own buffer again: after a burst, an idle
 * connection holds 1 KiB, not the 64 KiB the burst needed.
 *
 * @example
 * ```ts
 * import { LENT_READ_BUFFER, ReadBuffers } from "./read_buffers.ts";
 * import assert from "node:assert/strict";
 * const buffers = new ReadBuffers();
 * const lent = buffers.borrow(100);
 * assert.equal(lent.length, LENT_READ_BUFFER);
 * buffers.giveBack(lent);
 * assert.equal(buffers.borrow(100), lent);
 * ```
 */
export class ReadBuffers {
  readonly #kept: Uint8Array[] = [];

  /** A buffer of at least {@linkcode LENT_READ_BUFFER} bytes, and at least `atLeast`. */
  borrow(atLeast: number): Uint8Array {
    if (atLeast > LENT_READ_BUFFER) return new Uint8Array(atLeast);
    return this.#kept.pop() ?? new Uint8Array(LENT_READ_BUFFER);
  }

  /** Takes back a borrowed buffer that no read is pending into. */
  giveBack(buffer: Uint8Array): void {
    if (buffer.length === LENT_READ_BUFFER && this.#kept.length < KEPT) this.#kept.push(buffer);
  }
}
