/**
 * Memory for the large, long-lived arrays of a directory.
 *
 * @module
 */

/**
 * glibc serves any request above this from its own `mmap` and unmaps it on
 * `free` (mallopt(3): the dynamic mmap threshold never rises above 32 MiB on
 * 64-bit systems); a page more for its header.
 */
const ALWAYS_MAPPED = 32 * 1024 * 1024 + 4096;
/** Smaller arrays are not worth an address range of their own. */
const LARGE = 1024 * 1024;

/**
 * An `ArrayBuffer` of at least `byteLength` zeroed bytes, whose memory goes
 * back to the system as soon as it is collected. Take a view of the length
 * you need: a large request may get a larger buffer.
 *
 * Why: a directory's arrays are allocated on the loader's thread and freed on
 * the serving thread after a reload. glibc serves requests under its mmap
 * threshold from per-thread arenas, raises that threshold as large blocks are
 * freed, and keeps freed arena memory: resident memory grows with every
 * reload and stays there (docs/performance.md, "Memory"). A request above
 * 32 MiB is always mapped
 * on its own and unmapped when freed, and calloc leaves fresh pages
 * untouched, so rounding large arrays up costs address space, not memory.
 * (Resizable buffers also come from mmap, but V8's code for views of them is
 * about 20% slower on the lookup path.)
 *
 * @example
 * ```ts
 * import { mappedBuffer } from "./mapped_buffer.ts";
 * import assert from "node:assert/strict";
 * const slots = new Int32Array(mappedBuffer(4 << 20), 0, 1 << 20);
 * assert.deepEqual(slots.length, 1 << 20);
 * assert.deepEqual(slots[0], 0);
 * ```
 */
export function mappedBuffer(byteLength: number): ArrayBuffer {
  return new ArrayBuffer(byteLength >= LARGE ? Math.max(byteLength, ALWAYS_MAPPED) : byteLength);
}
