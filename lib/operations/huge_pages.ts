/**
 * Putting the data on transparent huge pages, and telling the operator when
 * sipdir was started without asking for them.
 *
 * Why it matters: a load writes the whole dump into fresh memory. On 4 KiB
 * pages that is one page fault per 4 KiB, 170 000 for a 700 MB dump, and on
 * a virtual machine each fault also slows the vCPU answering lookups: on
 * huge pages, a load takes about half the time, and lookups during a
 * reload keep a far shorter tail (docs/performance.md, "Loading and
 * reloading").
 *
 * glibc puts its large allocations on huge pages when the process starts
 * with the tunable {@linkcode HUGE_PAGES_TUNABLE} (glibc 2.35 and later) and
 * the kernel's THP mode is `madvise` (Debian's default) or `always`. A
 * process cannot set it for itself, since glibc reads it before any code
 * runs: the launchers do (the start task, the systemd unit, the container
 * image). sipdir can only check that it was asked for: the kernel's THP
 * mode and the process's huge pages are in `/sys` and `/proc`, which Deno
 * opens only with every permission.
 *
 * @module
 */

/** The `GLIBC_TUNABLES` value that makes glibc ask for huge pages for what it maps. */
export const HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1";

/** Data smaller than this loads in well under a second either way: no advice. */
const WORTH_IT = 64 * 1024 * 1024;

/**
 * This process's `GLIBC_TUNABLES`: "" when unset, undefined when sipdir may
 * not read it (its only environment permission is for that variable).
 *
 * @example
 * ```ts
 * import { glibcTunables } from "./huge_pages.ts";
 * import assert from "node:assert/strict";
 * assert.equal(typeof glibcTunables(), "string");
 * ```
 */
export function glibcTunables(): string | undefined {
  try {
    return Deno.env.get("GLIBC_TUNABLES") ?? "";
  } catch {
    return undefined;
  }
}

/**
 * What to tell the operator about `dataBytes` of loaded data when the
 * process's `GLIBC_TUNABLES` is `tunables`, or undefined when there is
 * nothing to do: the data is small, huge pages were asked for (`hugetlb=1`,
 * or `2` for reserved ones), or the variable could not be read.
 *
 * @example
 * ```ts
 * import { hugePagesAdvice } from "./huge_pages.ts";
 * import assert from "node:assert/strict";
 * const MB = 1024 * 1024;
 * assert.match(hugePagesAdvice("", 700 * MB)!, /GLIBC_TUNABLES=glibc.malloc.hugetlb=1/);
 * assert.equal(hugePagesAdvice("glibc.malloc.hugetlb=1", 700 * MB), undefined);
 * assert.equal(hugePagesAdvice("", 1 * MB), undefined);
 * assert.equal(hugePagesAdvice(undefined, 700 * MB), undefined);
 * ```
 */
export function hugePagesAdvice(
  tunables: string | undefined,
  dataBytes: number,
): string | undefined {
  if (tunables === undefined || dataBytes < WORTH_IT) return undefined;
  if (/(^|:)glibc\.malloc\.hugetlb=[12](:|$)/.test(tunables)) return undefined;
  return `GLIBC_TUNABLES does not ask for huge pages: unless the kernel's THP mode is ` +
    `"always", ${Math.round(dataBytes / (1024 * 1024))} MB of data sit on 4 KiB pages, and ` +
    "loads and reloads, faulting in every one, take about twice as long and slow lookups " +
    `meanwhile; start sipdir with GLIBC_TUNABLES=${HUGE_PAGES_TUNABLE} in its environment ` +
    '(docs/operations.md, "Memory and huge pages")';
}
