/**
 * `--journal` on a sipdir process: changes appended while clients pipeline
 * lookups on both ports, every answer checked against the state at the
 * sequence number it carries; a restart; reloads that go forward or would go
 * back; the reload guard and `--watch` beside a journal.
 */

import { assertEquals, assertOk } from "./assert.ts";
import { LineClient, record, SipdirProcess } from "./helpers.ts";

const encoder = new TextEncoder();
const AORS = Array.from({ length: 500 }, (_, i) => `j${String(i).padStart(4, "0")}`);

/** The registration of `aor` as of journal line `seq` (0: the dump's). */
function value(aor: string, seq: number): string {
  return record(aor, { seq, contact: `<sip:${aor}@10.0.${seq % 256}.${(seq >> 8) % 256}>` });
}

function dump(sequence: number, entries: [string, string][]): string {
  return `{"sequence":${sequence}}\n` + entries.map(([, v]) => v).join("\n") + "\n";
}

function putLine(seq: number, aor: string): string {
  return `{"seq":${seq},"put":${value(aor, seq)}}\n`;
}

function delLine(seq: number, aor: string): string {
  return `{"seq":${seq},"del":"${aor}"}\n`;
}

/**
 * The journal a test writes: line by line, deterministic, with the state
 * after each line kept, so that any answer can be checked.
 */
class JournalModel {
  /** AOR → its value after the lines so far; absent: deleted (or never there). */
  readonly state = new Map<string, string>();
  /** AOR → every value it had, by sequence number. */
  readonly history = new Map<string, Map<number, string | null>>();
  seq: number;

  constructor(sequence: number, initial: [string, string][]) {
    this.seq = sequence;
    for (const [aor, v] of initial) {
      this.state.set(aor, v);
      this.history.set(aor, new Map([[sequence, v]]));
    }
  }

  /** The next line: a put (mostly) or a delete of the `i`-th pick. */
  next(i: number): string {
    const seq = ++this.seq;
    const aor = AORS[(i * 7919) % AORS.length];
    const deleting = i % 10 === 9;
    const versions = this.history.get(aor) ?? new Map();
    this.history.set(aor, versions);
    if (deleting) {
      this.state.delete(aor);
      versions.set(seq, null);
      return delLine(seq, aor);
    }
    const v = value(aor, seq);
    this.state.set(aor, v);
    versions.set(seq, v);
    return putLine(seq, aor);
  }
}

async function withJournal(
  args: string[],
  fn: (sipdir: SipdirProcess, files: { dir: string; dump: string; journal: string }) => Promise<
    void
  >,
  setup: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sipdir-journal-" });
  await setup(dir);
  const files = { dir, dump: `${dir}/regs`, journal: `${dir}/journal` };
  const sipdir = await SipdirProcess.start([
    ...["-d", files.dump, "--journal", files.journal, "-p", "0", "--redis-port", "0"],
    ...args,
  ]);
  try {
    await fn(sipdir, files);
  } finally {
    sipdir.kill("SIGTERM");
    await sipdir.exit();
    await Deno.remove(dir, { recursive: true });
  }
}

async function ports(sipdir: SipdirProcess): Promise<{ line: number; redis: number }> {
  const line = await sipdir.port();
  const redis = await sipdir.redisPort();
  return { line, redis };
}

/** Every AOR's answer on the line port, in one pipelined burst. */
async function snapshot(port: number): Promise<string[]> {
  const client = await LineClient.connect(port);
  try {
    await client.send(AORS.map((aor) => `${aor}\n`).join(""));
    return await client.lines(AORS.length);
  } finally {
    client.close();
  }
}

/** A RESP GET of `aor` and its reply, read whole. */
async function redisGet(conn: Deno.Conn, aors: string[]): Promise<string[]> {
  const request = aors.map((a) => `*2\r\n$3\r\nGET\r\n$${a.length}\r\n${a}\r\n`).join("");
  await conn.write(encoder.encode(request));
  const replies: string[] = [];
  let pending = "";
  const buf = new Uint8Array(1 << 16);
  const decoder = new TextDecoder();
  while (replies.length < aors.length) {
    const n = await conn.read(buf);
    if (n === null) throw new Error("closed");
    pending += decoder.decode(buf.subarray(0, n), { stream: true });
    for (;;) {
      const crlf = pending.indexOf("\r\n");
      if (crlf < 0) break;
      const length = Number(pending.slice(1, crlf));
      if (length < 0) {
        replies.push("");
        pending = pending.slice(crlf + 2);
        continue;
      }
      const bytes = encoder.encode(pending.slice(crlf + 2));
      if (bytes.length < length + 2) break;
      replies.push(decoder.decode(bytes.subarray(0, length)));
      pending = decoder.decode(bytes.subarray(length + 2));
    }
  }
  return replies;
}

/** The sequence number an answer carries (its `seq` field), or null for an empty one. */
function seqOf(answer: string): number | null {
  return answer === "" ? null : (JSON.parse(answer).seq as number);
}

Deno.test("journal process: appended while clients pipeline on both ports; every answer is a state it had", async () => {
  const initial = AORS.map((aor): [string, string] => [aor, value(aor, 0)]);
  const model = new JournalModel(0, initial);
  await withJournal(["--max-pending", "4096"], async (sipdir, files) => {
    const { line, redis } = await ports(sipdir);
    const journal = await Deno.open(files.journal, { append: true });
    let writing = true;
    // The writer: 4000 lines in batches, as an exporter appends them.
    const writer = (async () => {
      for (let i = 0; i < 4000; i += 20) {
        let text = "";
        for (let j = i; j < i + 20; j++) text += model.next(j);
        await journal.write(encoder.encode(text));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      writing = false;
    })();
    // Readers: per AOR, the sequence numbers seen never go down, and each
    // answer is exactly the value the journal gave that AOR at that number.
    const check = (aor: string, answer: string, seen: Map<string, number>) => {
      const seq = seqOf(answer) ?? -1;
      if (seq >= 0) {
        const expected = model.history.get(aor)?.get(seq);
        assertEquals(answer, expected, `${aor} at ${seq}`);
      }
      assertOk(seq >= (seen.get(aor) ?? -1) || seq === -1, `${aor} went back to ${seq}`);
      if (seq >= 0) seen.set(aor, seq);
    };
    let answers = 0;
    const lineReader = (async () => {
      const seen = new Map<string, number>();
      while (writing) {
        const snap = await snapshot(line);
        snap.forEach((answer, i) => check(AORS[i], answer, seen));
        answers += snap.length;
      }
    })();
    const redisReader = (async () => {
      const seen = new Map<string, number>();
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: redis });
      try {
        while (writing) {
          const replies = await redisGet(conn, AORS);
          replies.forEach((answer, i) => check(AORS[i], answer, seen));
          answers += replies.length;
        }
      } finally {
        conn.close();
      }
    })();
    await Promise.all([writer, lineReader, redisReader]);
    journal.close();
    // Caught up: every AOR answers the journal's last state, on both ports.
    const expected = AORS.map((aor) => model.state.get(aor) ?? "");
    for (let i = 0; i < 200; i++) {
      if ((await snapshot(line)).join("\n") === expected.join("\n")) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assertEquals(await snapshot(line), expected);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: redis });
    assertEquals(await redisGet(conn, AORS), expected);
    conn.close();
    const counters = await sipdir.counters();
    assertEquals(counters.journalApplied, 4000);
    console.log(`  ${answers} answers checked while 4000 lines were appended`);
  }, async (dir) => {
    await Deno.writeTextFile(`${dir}/regs`, dump(0, initial));
    await Deno.writeTextFile(`${dir}/journal`, "");
  });
});

Deno.test("journal process: a restart gives the same answers; reloads go forward, never back", async () => {
  const initial = AORS.map((aor): [string, string] => [aor, value(aor, 0)]);
  const model = new JournalModel(0, initial);
  let journalText = "";
  for (let i = 0; i < 1000; i++) journalText += model.next(i);
  const setup = async (dir: string) => {
    await Deno.writeTextFile(`${dir}/regs`, dump(0, initial));
    await Deno.writeTextFile(`${dir}/journal`, journalText);
  };
  const expected = AORS.map((aor) => model.state.get(aor) ?? "");
  await withJournal([], async (sipdir, files) => {
    const { line } = await ports(sipdir);
    assertEquals(await snapshot(line), expected);
    // The same files, a new process: the same answers.
    const again = await SipdirProcess.start([
      ...["-d", files.dump, "--journal", files.journal, "-p", "0"],
    ]);
    try {
      assertEquals(await snapshot(await again.port()), expected);
    } finally {
      again.kill("SIGTERM");
      await again.exit();
    }

    // A new dump that includes the journal up to 600 (as an exporter would
    // write it), and the journal beyond: the same state, from the new dump.
    const at600 = new JournalModel(0, initial);
    for (let i = 0; i < 600; i++) at600.next(i);
    const newer = [...at600.state.entries()];
    await Deno.writeTextFile(`${files.dir}/regs.new`, dump(600, newer));
    await Deno.rename(`${files.dir}/regs.new`, files.dump);
    let from = sipdir.stderr.length;
    sipdir.kill("SIGHUP");
    await sipdir.waitFor(/reloaded /, 20_000, from);
    assertEquals(await snapshot(line), expected);

    // A dump from before the journal's start with a journal that now starts
    // at 900: serving them would undo 1..900's changes; refused.
    await Deno.writeTextFile(`${files.dir}/regs.new`, dump(0, initial));
    await Deno.rename(`${files.dir}/regs.new`, files.dump);
    const tail = journalText.split("\n").slice(900).join("\n");
    await Deno.writeTextFile(`${files.dir}/journal.new`, tail);
    await Deno.rename(`${files.dir}/journal.new`, files.journal);
    from = sipdir.stderr.length;
    sipdir.kill("SIGHUP");
    const verdict = await sipdir.waitFor(
      /reload (refused|failed)[^\n]*|reloaded [^\n]*/,
      20_000,
      from,
    );
    assertOk(verdict[0].includes("the changes between are in neither"), verdict[0]);
    assertEquals(await snapshot(line), expected);
  }, setup);
});

Deno.test("journal process: the reload guard and --watch beside a journal", async () => {
  const initial = AORS.map((aor): [string, string] => [aor, value(aor, 0)]);
  const model = new JournalModel(0, initial);
  await withJournal(["--watch"], async (sipdir, files) => {
    const { line } = await ports(sipdir);
    const append = (text: string) => Deno.writeTextFile(files.journal, text, { append: true });
    let text = "";
    for (let i = 0; i < 50; i++) text += model.next(i);
    await append(text);
    const expected = () => AORS.map((aor) => model.state.get(aor) ?? "");
    const caughtUp = async () => {
      for (let i = 0; i < 200; i++) {
        if ((await snapshot(line)).join("\n") === expected().join("\n")) return;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      assertEquals(await snapshot(line), expected());
    };
    await caughtUp();
    // A truncated dump published: refused by the guard; the journal goes on.
    let from = sipdir.stderr.length;
    await Deno.writeTextFile(`${files.dir}/regs.new`, dump(0, initial.slice(0, 10)));
    await Deno.rename(`${files.dir}/regs.new`, files.dump);
    await sipdir.waitFor(/reload refused/, 20_000, from);
    text = "";
    for (let i = 50; i < 100; i++) text += model.next(i);
    await append(text);
    await caughtUp();
    // A good dump at 100 (the state so far), published and watched: served,
    // and the journal's next lines over it.
    from = sipdir.stderr.length;
    await Deno.writeTextFile(`${files.dir}/regs.new`, dump(100, [...model.state.entries()]));
    await Deno.rename(`${files.dir}/regs.new`, files.dump);
    await sipdir.waitFor(/reloaded /, 20_000, from);
    text = "";
    for (let i = 100; i < 150; i++) text += model.next(i);
    await append(text);
    await caughtUp();
    const counters = await sipdir.counters();
    assertEquals([counters.reloads, counters.reloadRefusals], [1, 1]);
  }, async (dir) => {
    await Deno.writeTextFile(`${dir}/regs`, dump(0, initial));
    await Deno.writeTextFile(`${dir}/journal`, "");
  });
});
