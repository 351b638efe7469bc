/**
 * The journal of registration changes, without a server: its lines, the
 * changes they make over a directory, reading a file as it grows, and
 * following it as it is rotated, truncated, broken and fixed.
 */

import { assertEquals, assertOk } from "./assert.ts";
import { Changes } from "../lib/directory/changes.ts";
import { LiveDirectory } from "../lib/directory/live.ts";
import { JournalFollower, type JournalOptions } from "../lib/journal/follower.ts";
import { JournalLine } from "../lib/journal/journal_line.ts";
import { JournalReader } from "../lib/journal/journal_reader.ts";
import { loadDirectory } from "../lib/loading/load.ts";
import { Counters } from "../lib/operations/counters.ts";
import { directoryOf, record, tempFile } from "./helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function put(seq: number, aor: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ seq, put: JSON.parse(record(aor, extra)) });
}

function del(seq: number, aor: string): string {
  return JSON.stringify({ seq, del: aor });
}

/** Waits until `check` holds (polling), or fails after `ms`. */
async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    assertOk(Date.now() < deadline, `still not: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test("journal line: puts and deletes; what is not a journal line, and why", () => {
  const line = new JournalLine();
  const read = (text: string) => {
    const bytes = encoder.encode(text);
    const ok = line.read(bytes, 0, bytes.length);
    return { ok, error: line.error, bytes };
  };
  const spaced = read(
    '  { "seq" : 12 , "put" : { "addressOfRecord" : "a\\u0031", "x" : [1, 2] } } \r',
  );
  assertOk(spaced.ok, spaced.error);
  assertEquals([line.seq, line.kind], [12, "put"]);
  assertEquals(decoder.decode(line.key.subarray(line.keyStart, line.keyEnd)), "a1");
  assertEquals(
    decoder.decode(spaced.bytes.subarray(line.answerStart, line.answerEnd)),
    '{"addressOfRecord":"a\\u0031","x":[1,2]}',
  );
  assertOk(read('{"seq":13,"del":"a\\"b"}').ok);
  assertEquals([line.kind, decoder.decode(line.key)], ["del", 'a"b']);
  const refused: [string, RegExp][] = [
    ["", /not a journal line/],
    ["[1]", /not a journal line/],
    ['{"put":{"addressOfRecord":"a"},"seq":1}', /"seq" first/],
    ['{"seq":0,"del":"a"}', /whole number from 1/],
    ['{"seq":01,"del":"a"}', /whole number from 1/],
    ['{"seq":-1,"del":"a"}', /whole number from 1/],
    ['{"seq":1.5,"del":"a"}', /expected ,/],
    ['{"seq":99999999999999999,"del":"a"}', /whole number from 1/],
    ['{"seq":1,"set":{}}', /"put" or "del"/],
    ['{"seq":1,"put":{"x":1}}', /missing "addressOfRecord"/],
    ['{"seq":1,"put":{"addressOfRecord":"a"}', /"put": invalid JSON/],
    ['{"seq":1,"put":{"addressOfRecord":"a"}} x', /expected } at the end/],
    ['{"seq":1,"put":{"addressOfRecord":" a"}}', /white space/],
    ['{"seq":1,"del":"a" "b"}', /one string/],
    ['{"seq":1,"del":""}', /empty/],
    ['{"seq":1,"del":7}', /as a string/],
  ];
  for (const [text, error] of refused) {
    const result = read(text);
    assertOk(!result.ok, text);
    assertOk(error.test(result.error), `${text}: ${result.error}`);
  }
});

Deno.test("changes: over a directory, lookups see puts and deletes; the size follows", async () => {
  const directory = await directoryOf(`${record("a")}\n${record("b")}\n`);
  const changes = new Changes(directory);
  directory.changes = changes;
  const key = (s: string) => encoder.encode(s);
  const answer = (s: string) => decoder.decode(directory.get(s) ?? new Uint8Array());
  const putRecord = (aor: string, extra: Record<string, unknown>) => {
    const k = key(aor);
    const r = key(record(aor, extra));
    changes.put(k, 0, k.length, r, 0, r.length);
  };
  putRecord("a", { v: 2 });
  putRecord("c", { v: 3 });
  changes.delete(key("b"), 0, 1);
  changes.delete(key("zz"), 0, 2);
  assertEquals(answer("a"), `${record("a", { v: 2 })}\n`);
  assertEquals(answer("b"), "");
  assertEquals(answer("c"), `${record("c", { v: 3 })}\n`);
  assertEquals(answer("zz"), "");
  // a (changed), c (added), b (deleted): 2 + 1 - 1.
  assertEquals(directory.size, 2);
  putRecord("b", { v: 4 });
  assertEquals([answer("b"), directory.size], [`${record("b", { v: 4 })}\n`, 3]);
  assertEquals(changes.count, 4);
});

Deno.test("changes: random puts and deletes, large and small, answer as a plain map of the same changes does", () => {
  // Compaction moves entries into new chunks while it empties one; with these seeds it needs a
  // new chunk midway, which must not take the slot being emptied (an entry would move twice).
  for (const seed of [1, 2, 3]) {
    let state = seed;
    const random = () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const changes = new Changes({ findInBase: () => -1 });
    const model = new Map<string, string>();
    for (let i = 0; i < 5000; i++) {
      const aor = `k${Math.floor(random() * 200)}`;
      const key = encoder.encode(aor);
      if (random() < 0.05) {
        changes.delete(key, 0, key.length);
        model.delete(aor);
        continue;
      }
      const size = Math.floor(random() < 0.1 ? random() * 300_000 : random() * 3000);
      const value = record(aor, { i, pad: "x".repeat(size) });
      const bytes = encoder.encode(value);
      changes.put(key, 0, key.length, bytes, 0, bytes.length);
      model.set(aor, value);
    }
    for (let k = 0; k < 200; k++) {
      const key = encoder.encode(`k${k}`);
      const id = changes.find(key, 0, key.length);
      const served = id < 0 || changes.isDeleted(id)
        ? undefined
        : decoder.decode(changes.value(id));
      assertEquals(served, model.get(`k${k}`), `seed ${seed}, k${k}`);
    }
  }
});

Deno.test("changes: 300 000 changes to a thousand AORs hold about twice what the last ones take", () => {
  const changes = new Changes({ findInBase: () => -1 });
  const value = (aor: string, n: number) =>
    encoder.encode(record(aor, { n, pad: "x".repeat(400 + (n % 200)) }));
  let live = 0;
  const last = new Map<string, number>();
  for (let n = 0; n < 300_000; n++) {
    const aor = `aor${n % 1000}`;
    const key = encoder.encode(aor);
    const bytes = value(aor, n);
    changes.put(key, 0, key.length, bytes, 0, bytes.length);
    last.set(aor, bytes.length + 1 + key.length);
  }
  for (const bytes of last.values()) live += bytes;
  const held = changes.byteLength;
  console.log(`  live ${(live / 1024).toFixed(0)} KiB, held ${(held / 1024).toFixed(0)} KiB`);
  assertOk(held <= 2 * live + 6 * 1024 * 1024, `held ${held} for ${live} live`);
  // Every AOR still answers its last value.
  for (let i = 0; i < 1000; i += 37) {
    const aor = `aor${i}`;
    const key = encoder.encode(aor);
    const id = changes.find(key, 0, key.length);
    const n = 299_000 + i;
    assertEquals(decoder.decode(changes.value(id)), decoder.decode(value(aor, n)));
  }
});

Deno.test("journal reader: lines applied as they are appended; a partial line waits for its end", async () => {
  const path = await tempFile("");
  const changes = new Changes({ findInBase: () => -1 });
  const reader = await JournalReader.open(path, changes, 5);
  try {
    const file = await Deno.open(path, { append: true });
    await file.write(encoder.encode(`${put(5, "old")}\n${put(6, "a")}\n${put(7, "b")}`));
    await reader.readAvailable(1 << 20);
    // 5 was applied already (the dump's sequence); 7 has no line end yet.
    assertEquals([reader.applied, reader.tally.applied, reader.tally.skipped], [6, 1, 1]);
    await file.write(encoder.encode(`\n${del(8, "a")}\n`));
    file.close();
    await reader.readAvailable(1 << 20);
    assertEquals([reader.applied, changes.count, reader.line], [8, 2, 4]);
    assertOk(changes.isDeleted(changes.find(encoder.encode("a"), 0, 1)));
  } finally {
    reader.close();
    await Deno.remove(path);
  }
});

Deno.test("journal reader: a budget applies that many bytes of lines, the rest of one read next time", async () => {
  const lines = Array.from({ length: 6 }, (_, i) => put(i + 1, `k${i}`));
  const path = await tempFile(lines.map((l) => `${l}\n`).join("") + put(7, "partial"));
  const changes = new Changes({ findInBase: () => -1 });
  const reader = await JournalReader.open(path, changes, 0);
  try {
    // A line at least per call: 1 byte of budget is one line, two lines' bytes are two.
    assertEquals(await reader.readAvailable(1), true);
    assertEquals(reader.applied, 1);
    assertEquals(await reader.readAvailable(lines[1].length + 1 + lines[2].length + 1), true);
    assertEquals(reader.applied, 3);
    // The rest of the file, with room to spare: false, there is no more (7 has no line end).
    assertEquals(await reader.readAvailable(1 << 20), false);
    assertEquals([reader.applied, reader.line, changes.count], [6, 6, 6]);
    await Deno.writeTextFile(path, "\n", { append: true });
    assertEquals(await reader.readAvailable(1 << 20), false);
    assertEquals(reader.applied, 7);
    // A line longer than one read's buffer (256 KiB) grows it, and is applied whole.
    const big = "x".repeat(600_000);
    await Deno.writeTextFile(path, `${put(8, "big", { big })}\n${put(9, "after")}\n`, {
      append: true,
    });
    while (await reader.readAvailable(1 << 16));
    assertEquals(reader.applied, 9);
    const id = changes.find(encoder.encode("big"), 0, 3);
    assertEquals(decoder.decode(changes.answer(id)), `${record("big", { big })}\n`);
  } finally {
    reader.close();
    await Deno.remove(path);
  }
});

Deno.test("journal reader: a line that arrives in thousands of small writes costs its length, not its length squared", async () => {
  const path = await tempFile("");
  const changes = new Changes({ findInBase: () => -1 });
  const reader = await JournalReader.open(path, changes, 0);
  const file = await Deno.open(path, { append: true });
  try {
    await file.write(encoder.encode('{"seq":1,"put":{"addressOfRecord":"a","x":"'));
    const piece = encoder.encode("x".repeat(4096));
    // 15.6 MiB, read after each 4 KiB: searched from the line's start every time, that is
    // 30 GB of searching (24 s on the test VM); searched once, 0.5 s. The bound leaves 20x.
    const started = performance.now();
    for (let i = 0; i < 4000; i++) {
      await file.write(piece);
      await reader.readAvailable(1 << 16);
    }
    const ms = performance.now() - started;
    assertOk(ms < 10_000, `4000 reads of one growing line took ${ms.toFixed(0)} ms`);
    await file.write(encoder.encode('"}}\n'));
    while (await reader.readAvailable(1 << 16));
    assertEquals([reader.applied, reader.fault], [1, null]);
  } finally {
    file.close();
    reader.close();
    await Deno.remove(path);
  }
});

/** What a test of a follower gets from {@linkcode withFollower}. */
interface Following {
  path: string;
  live: LiveDirectory;
  follower: JournalFollower;
  /** Appends lines (each given without its line end). */
  append: (...lines: string[]) => Promise<void>;
}

/**
 * Runs `body` with a follower started on a new journal holding `first`, over a dump of "a";
 * closes it and removes the journal's directory after.
 */
async function withFollower(
  first: string,
  options: Omit<JournalOptions, "path" | "live" | "counters">,
  body: (following: Following) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sipdir-journal-" });
  const path = `${dir}/journal`;
  await Deno.writeTextFile(path, first);
  const live = new LiveDirectory(await directoryOf(`${record("a")}\n`));
  const follower = new JournalFollower({ path, live, counters: new Counters(), ...options });
  const append = (...lines: string[]) =>
    Deno.writeTextFile(path, lines.map((l) => `${l}\n`).join(""), { append: true });
  try {
    await follower.start(0);
    await body({ path, live, follower, append });
  } finally {
    follower.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("journal follower: rotated or copied and truncated right after a look that stopped at its budget, no line is lost", async () => {
  const line = (seq: number) => `${put(seq, `k${seq}`, { x: "x".repeat(900) })}\n`;
  const turns: Record<string, (path: string) => void> = {
    // One more line to the old file, then the writer renames it away and starts a new one.
    rotated: (path) => {
      Deno.writeTextFileSync(path, line(102), { append: true });
      Deno.renameSync(path, `${path}.1`);
      Deno.writeTextFileSync(path, line(103));
    },
    // The lines read and not applied yet are in the copy only.
    "copied and truncated": (path) => {
      Deno.copyFileSync(path, `${path}.1`);
      Deno.truncateSync(path, 0);
      Deno.writeTextFileSync(path, line(102) + line(103));
    },
  };
  for (const [how, turn] of Object.entries(turns)) {
    const options = { pollInterval: 1, idlePollInterval: 1 };
    await withFollower(line(1), options, async ({ path, live, follower }) => {
      // More than a slice's budget (64 KiB) in one read: the first look stops at the budget.
      const lines = Array.from({ length: 100 }, (_, i) => line(i + 2)).join("");
      Deno.writeTextFileSync(path, lines, { append: true });
      // Right after its first slice (its next one waits for a turn of the event loop, as this
      // does), and before the next, synchronously.
      while (follower.applied === 1) await new Promise((resolve) => setTimeout(resolve, 0));
      turn(path);
      await until(() => follower.applied === 103, `the journal ${how} followed`);
      const missing = Array.from({ length: 102 }, (_, i) => `k${i + 2}`)
        .filter((aor) => live.directory.get(aor) === undefined);
      assertEquals(missing, [], how);
    });
  }
});

Deno.test("journal follower: a look that fails (a read error, a stale handle) is logged, and following goes on", async () => {
  const file = Deno.FsFile.prototype;
  const read = file.read;
  const open = Deno.open;
  const options = { pollInterval: 5, idlePollInterval: 20 };
  await withFollower(`${put(1, "a", { v: 1 })}\n`, options, async ({ live, follower, append }) => {
    try {
      await append(put(2, "a", { v: 2 }));
      await until(() => follower.applied === 2, "lines coming");
      // The next read fails once (EIO, or ESTALE on a network file system).
      const failed = Promise.withResolvers<void>();
      file.read = function () {
        file.read = read;
        failed.resolve();
        return Promise.reject(new Error("EIO (injected)"));
      };
      await append(put(3, "a", { v: 3 }));
      await failed.promise;
      await append(put(4, "a", { v: 4 }));
      await until(() => follower.applied === 4, "following after the failed look");
      assertEquals(decoder.decode(live.directory.get("a")), `${record("a", { v: 4 })}\n`);
      // Now the handle itself goes bad for good (stale): the journal is opened again by its path.
      const fresh = new WeakSet<Deno.FsFile>();
      Deno.open = async (...args: Parameters<typeof open>) => {
        const opened = await open(...args);
        fresh.add(opened);
        return opened;
      };
      file.read = function (this: Deno.FsFile, buffer: Uint8Array) {
        if (fresh.has(this)) return read.call(this, buffer);
        return Promise.reject(new Error("ESTALE (injected)"));
      };
      await append(put(5, "a", { v: 5 }));
      await until(() => follower.applied === 5, "following through a handle opened again");
      assertEquals(decoder.decode(live.directory.get("a")), `${record("a", { v: 5 })}\n`);
    } finally {
      Deno.open = open;
      file.read = read;
    }
  });
});

Deno.test("journal reader: readToEnd reads what was appended after a read that the budget stopped", async () => {
  const path = await tempFile(`${put(1, "a")}\n${put(2, "b")}\n${put(3, "c")}\n`);
  const changes = new Changes({ findInBase: () => -1 });
  const reader = await JournalReader.open(path, changes, 0);
  try {
    // One read took the whole file (short of its room: the end, then); the budget stopped it.
    assertEquals(await reader.readAvailable(1), true);
    assertEquals(reader.applied, 1);
    await Deno.writeTextFile(path, `${put(4, "late")}\n`, { append: true });
    await reader.readToEnd();
    assertEquals(reader.applied, 4);
  } finally {
    reader.close();
    await Deno.remove(path);
  }
});

Deno.test("journal follower: a reload adopted while the follower opens the journal again is the one followed", async () => {
  const open = JournalReader.open;
  const options = { pollInterval: 5, idlePollInterval: 10 };
  await withFollower(`${put(1, "a")}\n`, options, async ({ path, live, follower, append }) => {
    const held = Promise.withResolvers<void>();
    const release = Promise.withResolvers<void>();
    try {
      // The follower's own opening (the one that counts into its tally) waits until released.
      JournalReader.open = async (...args: Parameters<typeof open>) => {
        if (args[3] !== undefined) {
          held.resolve();
          await release.promise;
        }
        return await open.apply(JournalReader, args);
      };
      // Rotated: the follower opens the path again, and is held there.
      await Deno.writeTextFile(`${path}.new`, `${put(1, "a")}\n${put(2, "b")}\n`);
      await Deno.rename(`${path}.new`, path);
      await held.promise;
      // A reload meanwhile.
      const newer = await directoryOf(`${record("a", { v: 100 })}\n`);
      const prepared = await follower.prepare(newer, 0);
      assertEquals(prepared.check(), "");
      live.replace(newer);
      prepared.commit();
      release.resolve();
      await append(put(3, "z"));
      await until(() => live.directory.get("z") !== undefined, "a line after it served");
      assertEquals(follower.applied, 3);
    } finally {
      JournalReader.open = open;
    }
  });
});

Deno.test("journal reader: a number that does not grow, or a bad line, stops it there", async () => {
  for (
    const [text, reason] of [
      [`${put(1, "a")}\n${put(3, "b")}\n${put(2, "c")}\n${put(4, "d")}\n`, /"seq" 2 does not grow/],
      [`${put(1, "a")}\n${put(3, "b")}\n${put(3, "c")}\n${put(4, "d")}\n`, /"seq" 3 does not grow/],
      [`${put(1, "a")}\n${put(3, "b")}\n{"seq":4,"put":{"aor":"c"}}\n${put(5, "d")}\n`, /missing/],
    ] as const
  ) {
    const path = await tempFile(text);
    const changes = new Changes({ findInBase: () => -1 });
    const reader = await JournalReader.open(path, changes, 0);
    await reader.readAvailable(1 << 20);
    reader.close();
    await Deno.remove(path);
    assertEquals([reader.applied, reader.fault?.line], [3, 3]);
    assertOk(reason.test(reader.fault!.reason), reader.fault!.reason);
    // Nothing after the bad line was applied.
    assertEquals(changes.find(encoder.encode("d"), 0, 1), -1);
  }
});

Deno.test("journal follower: rotated, truncated, gone and back, broken and fixed; never backwards", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sipdir-journal-" });
  const path = `${dir}/journal`;
  const live = new LiveDirectory(await directoryOf(`${record("a")}\n`));
  const counters = new Counters();
  const follower = new JournalFollower({
    path,
    live,
    counters,
    pollInterval: 5,
    idlePollInterval: 20,
  });
  const answer = (aor: string) => decoder.decode(live.directory.get(aor) ?? new Uint8Array());
  const append = (...lines: string[]) =>
    Deno.writeTextFile(path, lines.map((l) => `${l}\n`).join(""), { append: true });
  try {
    // No journal yet: the dump alone; it is picked up once it appears.
    await follower.start(0);
    assertEquals(follower.applied, 0);
    await append(put(1, "a", { v: 1 }));
    await until(() => answer("a") === `${record("a", { v: 1 })}\n`, "the new journal followed");
    await append(put(2, "b", { v: 2 }), del(3, "a"));
    await until(() => follower.applied === 3, "appended lines applied");
    assertEquals([answer("a"), answer("b")], ["", `${record("b", { v: 2 })}\n`]);

    // Rotated: renamed away, with a last line in the old file; a new one starts over.
    await append(put(4, "c", { v: 4 }));
    await Deno.rename(path, `${dir}/journal.1`);
    await Deno.writeTextFile(`${dir}/journal.1`, `${put(5, "c", { v: 5 })}\n`, { append: true });
    await Deno.writeTextFile(
      path,
      [put(4, "c", { v: 40 }), put(6, "d", { v: 6 })].join("\n") + "\n",
    );
    await until(() => follower.applied === 6, "the rotated journal followed");
    // 4 was applied from the old file, 5 from its last line; the new file's 4 skipped.
    assertEquals(answer("c"), `${record("c", { v: 5 })}\n`);
    assertOk(counters.journalLines.skipped >= 1);

    // Truncated, as a copy-truncate rotation does: read again from its start.
    await Deno.writeTextFile(path, `${put(7, "e", { v: 7 })}\n`);
    await until(() => follower.applied === 7, "the truncated journal followed");

    // A bad line stops it there, logged and counted; fixed in place, it goes on.
    await append('{"seq":8,"put":{"nope":1}}', put(9, "f", { v: 9 }));
    await until(() => follower.faulted, "the bad line seen");
    assertEquals([follower.applied, counters.journalErrors], [7, 1]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assertEquals(answer("f"), "");
    await Deno.writeTextFile(
      path,
      [put(7, "e", { v: 7 }), put(8, "f", { v: 8 }), put(9, "f", { v: 9 })].join("\n") + "\n",
    );
    await until(() => follower.applied === 9 && !follower.faulted, "applying resumed");
    assertEquals(answer("f"), `${record("f", { v: 9 })}\n`);

    // Gone: still serving; back (a new file): followed, skipping what was applied.
    await Deno.remove(path);
    await new Promise((resolve) => setTimeout(resolve, 30));
    assertEquals(answer("f"), `${record("f", { v: 9 })}\n`);
    await Deno.writeTextFile(path, [put(9, "f", { v: 90 }), put(10, "g")].join("\n") + "\n");
    await until(() => follower.applied === 10, "the journal back");
    assertEquals(answer("f"), `${record("f", { v: 9 })}\n`);

    // A journal that starts over (lower numbers): its lines are skipped, as
    // applied already. A reload whose dump and journal reach only those is
    // refused: serving it would undo changes; one that does not go back gets
    // the journal's lines above its sequence first.
    const skipped = counters.journalLines.skipped;
    await Deno.writeTextFile(
      `${dir}/journal.new`,
      [put(1, "a"), put(5, "g", { v: 5 })].join("\n") + "\n",
    );
    await Deno.rename(`${dir}/journal.new`, path);
    await until(
      () => counters.journalLines.skipped >= skipped + 2,
      "the restarted journal skipped",
    );
    assertEquals([follower.applied, answer("g")], [10, `${record("g")}\n`]);
    const older = await directoryOf(`${record("a", { v: 0 })}\n`);
    const behind = await follower.prepare(older, 0);
    assertOk(/reach sequence 5, behind the 10/.test(behind.check()), "a reload going back refused");
    behind.abandon();
    await append(put(11, "a", { v: 11 }));
    await until(() => follower.applied === 11, "appended after the restart");
    const newer = await directoryOf(`${record("a", { v: 100 })}\n${record("g", { v: 100 })}\n`);
    const prepared = await follower.prepare(newer, 10);
    assertEquals(prepared.check(), "");
    live.replace(newer);
    prepared.commit();
    // The dump at 10, with line 11 of the journal over it.
    assertEquals(answer("a"), `${record("a", { v: 11 })}\n`);
    assertEquals(answer("g"), `${record("g", { v: 100 })}\n`);
    assertEquals(answer("f"), "");
    await append(put(12, "h"));
    await until(() => answer("h") !== "", "the reloaded dump's journal followed");
  } finally {
    follower.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("journal follower: lines written one by one are all applied; after a quiet spell the kernel wakes it again", async () => {
  // The idle poll never comes within the test: only the kernel's events wake an idle follower.
  const options = { pollInterval: 10, idlePollInterval: 600_000, quietAfter: 100 };
  await withFollower(`${put(1, "a", { v: 1 })}\n`, options, async ({ live, follower, append }) => {
    const answer = (aor: string) => decoder.decode(live.directory.get(aor) ?? new Uint8Array());
    assertEquals(follower.applied, 1);
    await append(put(2, "a", { v: 2 }));
    await until(() => follower.applied === 2, "a line woke the idle follower");
    // A writer appending line by line: each is applied, in order, by the follower's polls.
    for (let seq = 3; seq <= 300; seq++) await append(put(seq, `k${seq % 7}`, { v: seq }));
    await until(() => follower.applied === 300, "the lines written one by one applied");
    assertEquals(answer("k6"), `${record("k6", { v: 300 })}\n`);
    // Quiet for a while, the follower listens to the kernel again: a new line is applied at once.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await append(put(301, "a", { v: 301 }));
    await until(() => follower.applied === 301, "a line after a quiet spell woke the follower");
    assertEquals(answer("a"), `${record("a", { v: 301 })}\n`);
  });
});

Deno.test("dump header: the sequence a dump includes; a declared count cuts a short one off", async () => {
  const lines = [record("a"), record("b")];
  const load = async (text: string) => {
    const path = await tempFile(text);
    try {
      return await loadDirectory({ path });
    } finally {
      await Deno.remove(path);
    }
  };
  assertEquals((await load(`${lines.join("\n")}\n`)).report.sequence, 0);
  const headed = await load(`{"sequence": 42}\n${lines.join("\n")}\n`);
  assertEquals([headed.report.sequence, headed.report.entries], [42, 2]);
  const counted = await load(`{"sequence":42,"registrations":2}\n${lines.join("\n")}\n`);
  assertEquals(counted.report.entries, 2);
  for (
    const [text, error] of [
      [`{"sequence":42,"registrations":3}\n${lines.join("\n")}\n`, /has 2 registrations where/],
      [`{"sequence":-1}\n${lines[0]}\n`, /"sequence" must be a whole number/],
      [`{"sequence":1,"extra":2}\n${lines[0]}\n`, /unknown "extra"/],
      [`${lines[0]}\n{"sequence":1}\n`, /:2: missing "addressOfRecord"/],
    ] as const
  ) {
    let message = "";
    await load(text).catch((e: Error) => message = e.message);
    assertOk(error.test(message), `${text}: ${message}`);
  }
});
