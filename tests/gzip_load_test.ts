/**
 * Gzip-compressed dumps: told by their magic bytes, decompressed into the
 * storage chunks, with the plain loader's validation, errors, progress and
 * threading; loaded by a process at start-up and on SIGHUP.
 */

import { assertEquals, assertOk, assertRejects } from "./assert.ts";
import { DataError, loadDirectory, type LoadResult } from "../lib/loading/load.ts";
import { openSource } from "../lib/loading/source.ts";
import { WorkerLoader } from "../lib/loading/worker_load.ts";
import { Dataset, LineClient, record, SipdirProcess, tempFile } from "./helpers.ts";

const DATA = new Dataset(3000, 21);
const encoder = new TextEncoder();

/** `content` gzip-compressed, as one member (what `gzip` writes). */
async function gzip(content: string): Promise<Uint8Array> {
  const bytes = encoder.encode(content);
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The same member with the original file name in its header, as `gzip FILE` writes it. */
function withFileName(member: Uint8Array, name: string): Uint8Array {
  const fname = encoder.encode(`${name}\0`);
  const out = new Uint8Array(member.length + fname.length);
  out.set(member.subarray(0, 10));
  out[3] |= 0x08; // FLG.FNAME
  out.set(fname, 10);
  out.set(member.subarray(10), 10 + fname.length);
  return out;
}

/** Runs `fn` on a temporary file holding `content`, then removes it. */
async function withFile<T>(content: Uint8Array, fn: (path: string) => Promise<T>): Promise<T> {
  const path = await tempFile(content);
  try {
    return await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

/** Asserts that two loads hold the same answers for `aors`, byte for byte. */
function assertSameAnswers(got: LoadResult, expected: LoadResult, aors: Iterable<string>): void {
  assertEquals(got.directory.size, expected.directory.size);
  assertEquals(got.directory.byteLength, expected.directory.byteLength);
  for (const aor of aors) assertEquals(got.directory.get(aor), expected.directory.get(aor), aor);
  assertEquals(got.directory.get("unknown"), undefined);
}

/** The report without what differs between a plain and a gzip load of the same data. */
const counts = ({ report }: LoadResult) => ({ ...report, ms: 0, fileBytes: 0 });

Deno.test("gzip load: every AOR is answered byte for byte as from the plain dump", async () => {
  const plainPath = await tempFile(DATA.text);
  const compressed = await gzip(DATA.text);
  try {
    const plain = await loadDirectory({ path: plainPath });
    for (const content of [compressed, withFileName(compressed, "regs.jsonl")]) {
      await withFile(content, async (path) => {
        for (const readOnThisThread of [false, true]) {
          const result = await loadDirectory({ path, readOnThisThread });
          assertSameAnswers(result, plain, DATA.aors);
          assertEquals(counts(result), counts(plain));
          assertEquals(result.report.fileBytes, content.length);
          assertEquals(result.report.bytes, encoder.encode(DATA.text).length);
        }
      });
    }
    assertEquals(plain.report.fileBytes, plain.report.bytes);
  } finally {
    await Deno.remove(plainPath);
  }
});

Deno.test("gzip load: told by the magic bytes, not the name", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sipdir-gzip-" });
  try {
    // A plain dump named .gz, and a gzip one named .jsonl.
    await Deno.writeTextFile(`${dir}/plain.gz`, DATA.text);
    await Deno.writeFile(`${dir}/packed.jsonl`, await gzip(DATA.text));
    const plain = await loadDirectory({ path: `${dir}/plain.gz` });
    const packed = await loadDirectory({ path: `${dir}/packed.jsonl` });
    assertSameAnswers(packed, plain, DATA.aors);
    assertOk(packed.report.fileBytes < plain.report.fileBytes / 3, String(packed.report.fileBytes));
    // One byte of magic is not gzip: a plain file, and a bad line 1.
    await Deno.writeFile(`${dir}/half`, new Uint8Array([0x1f, 0x0a]));
    const half = await assertRejects(loadDirectory({ path: `${dir}/half` }), DataError);
    assertEquals(half.line, 1);
    // A single byte is a plain file too.
    await Deno.writeTextFile(`${dir}/one`, "\n");
    assertEquals((await loadDirectory({ path: `${dir}/one` })).report.lines, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gzip load: a bad line is the same DataError as in the plain dump, same line", async () => {
  const good = record("ok");
  const lines = Array.from({ length: 5000 }, (_, i) => record(`g${i}`));
  const cases = [
    `${good}\n{"addressOfRecord":"a"\n`,
    `\n\n${good}\n[1,2]\n`,
    `${good}\r\n{"addressOfRecord":""}\r\n`,
    `${good}\n{"addressOfRecord":5}`,
    // Far into the stream: after several decompression steps and read blocks.
    [...lines.slice(0, 4321), '{"addressOfRecord":"x",}', ...lines.slice(4321)].join("\n"),
  ];
  for (const text of cases) {
    const plain = await withFile(
      encoder.encode(text),
      (path) => assertRejects(loadDirectory({ path }), DataError),
    );
    await withFile(await gzip(text), async (path) => {
      for (const chunkSize of [undefined, 64]) {
        const error = await assertRejects(loadDirectory({ path, chunkSize }), DataError);
        assertEquals([error.line, error.reason], [plain.line, plain.reason]);
        assertEquals(error.message, `${path}:${plain.line}: ${plain.reason}`);
      }
    });
  }
});

Deno.test("gzip load: chunk sizes that cross chunk edges give the plain dump's directory", async () => {
  // White space to compact, CRLF, blank lines, long lines and escaped AORs.
  const lines = DATA.aors.slice(0, 400).map((aor, i) =>
    i % 7 === 0
      ? ` { "addressOfRecord" : "${aor}" , "n" : [ ${i} ] }\r`
      : i % 11 === 0
      ? ""
      : i % 13 === 0
      ? JSON.stringify({ addressOfRecord: aor, pad: "p".repeat(5000) })
      : DATA.answers.get(aor)!
  );
  lines.push('{"addressOfRecord":"\\u00e9t\\u00e9"}');
  const text = lines.join("\n");
  const compressed = await gzip(text);
  const plainPath = await tempFile(text);
  try {
    await withFile(compressed, async (path) => {
      for (const chunkSize of [16, 100, 777, 4096, 65536]) {
        const plain = await loadDirectory({ path: plainPath, chunkSize });
        const packed = await loadDirectory({ path, chunkSize });
        assertSameAnswers(packed, plain, [...DATA.aors.slice(0, 400), "été"]);
        assertEquals(counts(packed), counts(plain));
      }
    });
  } finally {
    await Deno.remove(plainPath);
  }
});

Deno.test("gzip source: any step and block size yields the same bytes", async () => {
  const text = DATA.text.slice(0, 50_000);
  await withFile(await gzip(text), async (path) => {
    for (const [gzipStep, gzipRead] of [[1, 1], [3, 7], [4096, 1], [1, 65536], [100, 100]]) {
      for (const readOnThisThread of [false, true]) {
        const source = await openSource(path, { gzipStep, gzipRead, readOnThisThread });
        const out = new Uint8Array(text.length + 10);
        let fill = 0;
        try {
          for (let n; (n = await source.read(out.subarray(fill, fill + 1000))) !== null;) {
            fill += n;
          }
        } finally {
          await source.close();
        }
        assertEquals(source.format, "gzip");
        assertEquals(new TextDecoder().decode(out.subarray(0, fill)), text);
        assertEquals([source.fileRead, source.yielded], [source.fileSize, fill]);
        assertEquals(source.expectedSize, fill); // from the trailer
      }
    }
  });
});

Deno.test("gzip load: a truncated stream is a DataError naming the file, never a hang", async () => {
  const compressed = await gzip(DATA.text);
  for (const length of [2, 3, 10, 100, compressed.length >> 1, compressed.length - 8, -1]) {
    const cut = compressed.subarray(0, length < 0 ? compressed.length + length : length);
    await withFile(cut, async (path) => {
      for (const readOnThisThread of [false, true]) {
        const error = await assertRejects(loadDirectory({ path, readOnThisThread }), DataError);
        assertEquals(error.line, 0, error.message);
        assertOk(
          error.message.startsWith(`${path}: not a valid gzip stream: truncated or corrupt (`),
          error.message,
        );
      }
    });
  }
});

Deno.test("gzip load: a corrupt stream is blamed, not the bad lines it decompressed into", async () => {
  const compressed = await gzip(DATA.text);
  const corrupt: Uint8Array[] = [];
  const flipped = compressed.slice();
  flipped[flipped.length >> 1] ^= 0xff; // in the deflate data
  corrupt.push(flipped);
  const crc = compressed.slice();
  crc[crc.length - 6] ^= 0x01; // in the trailer's CRC-32
  corrupt.push(crc);
  const method = compressed.slice();
  method[2] = 9; // not deflate
  corrupt.push(method);
  for (const content of corrupt) {
    await withFile(content, async (path) => {
      const error = await assertRejects(loadDirectory({ path }), DataError);
      assertOk(error.message.startsWith(`${path}: not a valid gzip stream: `), error.message);
    });
  }
});

Deno.test("gzip load: data after the member, garbage or a second member, is a DataError", async () => {
  // DecompressionStream stops at the end of the first member and takes no
  // more input, so `cat a.gz b.gz` cannot be loaded: said, not half-loaded.
  const first = await gzip(`${record("a")}\n`);
  const second = await gzip(`${record("b")}\n`);
  const tails = [second, encoder.encode("garbage"), new Uint8Array(8)];
  for (const tail of tails) {
    const content = new Uint8Array([...first, ...tail]);
    await withFile(content, async (path) => {
      const error = await assertRejects(loadDirectory({ path }), DataError);
      assertEquals(
        error.message,
        `${path}: not a valid gzip stream: data after its end (concatenated gzip files are ` +
          "not supported: decompress and compress again as one)",
      );
    });
  }
});

Deno.test("gzip load: an empty stream gives an empty directory, like an empty file", async () => {
  for (const content of ["", "\n\n  \n"]) {
    await withFile(await gzip(content), async (path) => {
      const { report, directory } = await loadDirectory({ path });
      assertEquals([directory.size, report.entries, report.bytes], [0, 0, content.length]);
    });
  }
});

Deno.test("gzip load: progress is monotonic and ends at the compressed size", async () => {
  // About 12 MB decompressed: several 4 MiB blocks.
  const text = DATA.text.repeat(6);
  const compressed = await gzip(text);
  await withFile(compressed, async (path) => {
    for (const readOnThisThread of [false, true]) {
      const seen: [number, number][] = [];
      await loadDirectory({
        path,
        readOnThisThread,
        onProgress: (done, total) => seen.push([done, total]),
      });
      assertOk(seen.length >= 3, JSON.stringify(seen));
      for (let i = 1; i < seen.length; i++) assertOk(seen[i][0] >= seen[i - 1][0], String(seen));
      for (const [done, total] of seen) assertOk(done <= total && total === compressed.length);
      assertEquals(seen.at(-1), [compressed.length, compressed.length]);
    }
  });
});

Deno.test("gzip load: through WorkerLoader, in the foreground and in the background", async () => {
  const compressed = await gzip(DATA.text);
  const plainPath = await tempFile(DATA.text);
  const loader = new WorkerLoader();
  try {
    const plain = await loadDirectory({ path: plainPath, chunkSize: 64 * 1024 });
    await withFile(compressed, async (path) => {
      for (const background of [false, true]) {
        const progress: number[] = [];
        const result = await loader.load({
          path,
          background,
          chunkSize: 64 * 1024,
          onProgress: (done) => progress.push(done),
        });
        assertSameAnswers(result, plain, DATA.aors);
        assertEquals(counts(result), counts(plain));
        assertEquals(progress.at(-1), compressed.length);
      }
    });
    await withFile(compressed.subarray(0, 1000), async (path) => {
      const error = await assertRejects(loader.load({ path }), DataError);
      assertOk(error.message.startsWith(`${path}: not a valid gzip stream: `), error.message);
    });
    await withFile(await gzip(`${record("a")}\n{"addressOfRecord": 1}\n`), async (path) => {
      const error = await assertRejects(loader.load({ path, background: true }), DataError);
      assertEquals(error.message, `${path}:2: "addressOfRecord" must be a string, found a number`);
    });
  } finally {
    loader.close();
    await Deno.remove(plainPath);
  }
});

Deno.test("gzip load: sipdir starts on a .gz dump and reloads gzip to plain and back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sipdir-gzip-" });
  const path = `${dir}/regs.jsonl.gz`;
  const versions = [0, 1, 2].map((v) =>
    DATA.aors.slice(0, 1000).map((aor) => record(aor, { v })).join("\n") + "\n"
  );
  await Deno.writeFile(path, await gzip(versions[0]));
  const sipdir = await SipdirProcess.start(["-d", path, "-p", "0"]);
  const ask = async (port: number, v: number) => {
    const client = await LineClient.connect(port);
    try {
      const aors = [DATA.aors[0], DATA.aors[500], DATA.aors[999], DATA.aors[2000]];
      await client.send(aors.join("\n") + "\n");
      assertEquals(await client.lines(4), [...aors.slice(0, 3).map((a) => record(a, { v })), ""]);
    } finally {
      client.close();
    }
  };
  const reload = async () => {
    const from = sipdir.stderr.length;
    sipdir.kill("SIGHUP");
    return (await sipdir.waitFor(/^.*(reloaded|reload failed|reload refused).*$/m, 20_000, from))[
      0
    ];
  };
  try {
    const port = await sipdir.port();
    assertOk(/loaded 1000 entries \(0 duplicates\) from \S+regs.jsonl.gz/.test(sipdir.stderr));
    await ask(port, 0);
    // The same name, plain now: told by the content.
    await Deno.writeTextFile(`${path}.new`, versions[1]);
    await Deno.rename(`${path}.new`, path);
    assertOk((await reload()).includes(`reloaded ${path}: 1000 entries`), sipdir.stderr);
    await ask(port, 1);
    await Deno.writeFile(`${path}.new`, await gzip(versions[2]));
    await Deno.rename(`${path}.new`, path);
    assertOk((await reload()).includes(`reloaded ${path}: 1000 entries`), sipdir.stderr);
    await ask(port, 2);
    // A truncated gzip file keeps the data being served.
    const truncated = (await gzip(versions[0])).subarray(0, 2000);
    await Deno.writeFile(path, truncated);
    const failed = await reload();
    assertOk(failed.includes(`${path}: not a valid gzip stream: truncated or corrupt`), failed);
    await ask(port, 2);
  } finally {
    sipdir.kill("SIGTERM");
    await sipdir.exit();
    await Deno.remove(dir, { recursive: true });
  }
});
