import { assertAtMost, assertEquals, assertOk, assertRejects } from "./assert.ts";
import { DataError, loadDirectory } from "../lib/loading/load.ts";
import { record, seededRandom, tempFile } from "./helpers.ts";

const decoder = new TextDecoder();

async function load(content: string | Uint8Array, chunkSize?: number) {
  const path = await tempFile(content);
  try {
    return await loadDirectory({ path, chunkSize });
  } finally {
    await Deno.remove(path);
  }
}

async function loadError(content: string | Uint8Array): Promise<DataError> {
  const path = await tempFile(content);
  try {
    const error = await assertRejects(loadDirectory({ path }), DataError);
    assertEquals(error.message.startsWith(`${path}:`), true, error.message);
    return error;
  } finally {
    await Deno.remove(path);
  }
}

function answer(result: { directory: { get(aor: string): Uint8Array | undefined } }, aor: string) {
  const bytes = result.directory.get(aor);
  return bytes && decoder.decode(bytes);
}

Deno.test("load: compact lines are answered byte for byte", async () => {
  const lines = [
    record("a1"),
    record("b2", { path: ["<sip:x>"], n: 1.0e2 }),
    '{"addressOfRecord":"c3","x":"\\/\\u0041"}',
  ];
  const result = await load(lines.join("\n") + "\n");
  assertEquals(result.report.entries, 3);
  assertEquals(result.report.lines, 3);
  assertEquals(answer(result, "a1"), lines[0] + "\n");
  assertEquals(answer(result, "b2"), lines[1] + "\n");
  assertEquals(answer(result, "c3"), lines[2] + "\n");
  assertEquals(answer(result, "A1"), undefined); // case-sensitive
});

Deno.test("load: duplicates: the last line wins and is counted", async () => {
  const text = [record("a", { v: 1 }), record("b"), record("a", { v: 2 }), record("a", { v: 3 })]
    .join("\n");
  const result = await load(text);
  assertEquals(result.report, { ...result.report, entries: 2, duplicates: 2, lines: 4 });
  assertEquals(answer(result, "a"), record("a", { v: 3 }) + "\n");
});

Deno.test("load: blank lines are ignored but counted in line numbers", async () => {
  const result = await load(`\n${record("a")}\n   \n\t\r\n\r\n${record("b")}\n\n`);
  assertEquals([result.report.entries, result.report.lines], [2, 7]);
  const error = await loadError(`\n  \n${record("a")}\n\nnot json\n`);
  assertEquals(error.line, 5);
  assertEquals(error.reason, "invalid JSON: unexpected 'o' at column 2");
});

Deno.test("load: CRLF line ends are answered with LF; a last line needs no LF", async () => {
  const result = await load(`${record("a")}\r\n${record("b")}\r\n${record("c")}`);
  assertEquals(answer(result, "a"), record("a") + "\n");
  assertEquals(answer(result, "b"), record("b") + "\n");
  assertEquals(answer(result, "c"), record("c") + "\n");
  const crlfLast = await load(`${record("d")}\r`);
  assertEquals(answer(crlfLast, "d"), record("d") + "\n");
});

Deno.test("load: lines with white space are answered compacted", async () => {
  const result = await load(' { "addressOfRecord" : "a" , "path" : [ "<sip:x y>" ] }  \n');
  assertEquals(answer(result, "a"), '{"addressOfRecord":"a","path":["<sip:x y>"]}\n');
});

Deno.test("load: escaped AORs are keyed by their value", async () => {
  const result = await load(
    '{"addressOfRecord":"\\u0030142\\/x"}\n{"addressOfRecord":"\\u00e9t\\u00e9"}\n',
  );
  assertEquals(answer(result, "0142/x"), '{"addressOfRecord":"\\u0030142\\/x"}\n');
  assertEquals(answer(result, "été"), '{"addressOfRecord":"\\u00e9t\\u00e9"}\n');
});

Deno.test("load: a UTF-8 byte order mark is skipped", async () => {
  const result = await load(`\ufeff${record("a")}\n`);
  assertEquals(answer(result, "a"), record("a") + "\n");
});

Deno.test("load: each kind of bad line stops the load with its line number", async () => {
  const good = record("ok");
  const cases: [string | Uint8Array, number, string][] = [
    [`${good}\n{"addressOfRecord":"a"\n`, 2, "invalid JSON: unexpected end of line"],
    [`${good}\n${good}\n[1,2]\n`, 3, "not a JSON object: found an array"],
    [`{"uri":"x"}\n`, 1, 'missing "addressOfRecord"'],
    [`${good}\n{"addressOfRecord":5}`, 2, '"addressOfRecord" must be a string, found a number'],
    [`{"addressOfRecord":""}\n`, 1, '"addressOfRecord" is empty'],
    [
      `{"addressOfRecord":" a"}\n`,
      1,
      '"addressOfRecord" starts or ends with white space, which requests cannot carry',
    ],
    [
      `{"addressOfRecord":"a\\t"}\n`,
      1,
      '"addressOfRecord" starts or ends with white space, which requests cannot carry',
    ],
    [
      `{"addressOfRecord":"a\\nb"}\n`,
      1,
      '"addressOfRecord" contains a line break, which requests cannot carry',
    ],
    [
      new Uint8Array([...new TextEncoder().encode('{"addressOfRecord":"a'), 0xff, 0x22, 0x7d]),
      1,
      "invalid UTF-8 at column 22",
    ],
    [
      `${good}\n${good}} trailing\n`,
      2,
      `invalid JSON: unexpected '}' at column ${good.length + 1}`,
    ],
  ];
  for (const [content, line, reason] of cases) {
    const error = await loadError(content);
    assertEquals([error.line, error.reason], [line, reason]);
    assertEquals(error.message, `${error.path}:${line}: ${reason}`);
  }
});

Deno.test("load: a missing, unreadable or directory path is a DataError naming it", async () => {
  const missing = await assertRejects(loadDirectory({ path: "/nonexistent/regs" }), DataError);
  assertEquals(missing.message, "/nonexistent/regs: cannot open: no such file");
  const dir = await Deno.makeTempDir();
  try {
    const error = await assertRejects(loadDirectory({ path: dir }), DataError);
    assertEquals(error.message, `${dir}: is a directory`);
  } finally {
    await Deno.remove(dir);
  }
});

Deno.test("load: an empty file gives an empty directory", async () => {
  const result = await load("");
  assertEquals([result.report.entries, result.report.lines, result.directory.size], [0, 0, 0]);
  assertEquals((await load("\n\n  \n")).report.entries, 0);
});

Deno.test("load: progress reaches the file size", async () => {
  const text = Array.from({ length: 2000 }, (_, i) => record(`p${i}`)).join("\n");
  const path = await tempFile(text);
  const seen: [number, number][] = [];
  try {
    await loadDirectory({ path, onProgress: (done, total) => seen.push([done, total]) });
  } finally {
    await Deno.remove(path);
  }
  const size = new TextEncoder().encode(text).length;
  assertOk(seen.length > 0);
  assertEquals(seen.at(-1), [size, size]);
});

Deno.test("load: any chunk size gives the same directory as JSON.parse line by line", async () => {
  const next = seededRandom(3);
  for (let round = 0; round < 8; round++) {
    const lines: string[] = [];
    for (let i = 0; i < 300; i++) {
      const aor = `aor${Math.floor(next() * 200)}`; // many duplicates
      const r = next();
      const long = r < 0.05 ? "x".repeat(Math.floor(next() * 3000)) : "";
      if (r < 0.1) lines.push(next() < 0.5 ? "" : " \t ");
      else if (r < 0.3) {
        lines.push(` { "addressOfRecord" : "${aor}", "v" : [ ${i} , "${long}" ] } `);
      } else lines.push(JSON.stringify({ addressOfRecord: aor, v: i, long, u: "\u00e9\u{1F600}" }));
    }
    const eol = next() < 0.5 ? "\n" : "\r\n";
    const text = lines.join(eol) + (next() < 0.5 ? eol : "");
    const expected = new Map<string, string>();
    for (const line of lines) {
      if (line.trim() === "") continue;
      const value = JSON.parse(line);
      expected.set(value.addressOfRecord, JSON.stringify(value));
    }
    for (const chunkSize of [16, 100, 777, 4096, undefined]) {
      const result = await load(text, chunkSize);
      assertEquals(result.directory.size, expected.size, `chunk ${chunkSize}`);
      for (const [aor, json] of expected) {
        const got = answer(result, aor);
        assertOk(got?.endsWith("\n") && !got.slice(0, -1).includes("\n"), `${aor}: ${got}`);
        assertEquals(JSON.parse(got!), JSON.parse(json), `chunk ${chunkSize}, ${aor}`);
        // Compact input lines come back unchanged.
        if (!json.includes(" ")) assertEquals(got, json + "\n");
      }
    }
  }
});

Deno.test("load: memory stays near the file size", async () => {
  const text = Array.from({ length: 20_000 }, (_, i) => record(`m${i}`, { pad: "p".repeat(400) }))
    .join("\n");
  const result = await load(text, 1 << 20);
  // Chunks plus a 24-byte entry and two index slots per registration.
  assertAtMost(result.report.bytes, text.length + 1, "bytes");
  assertEquals(result.report.entries, 20_000);
});
