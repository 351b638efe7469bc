import { assertEquals, assertOk } from "./assert.ts";
import { compactInPlace, RecordScanner } from "../lib/loading/record.ts";
import { seededRandom } from "./helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function scan(line: string | Uint8Array) {
  const bytes = typeof line === "string" ? encoder.encode(line) : line;
  const scanner = new RecordScanner();
  const ok = scanner.scan(bytes, 0, bytes.length);
  return { ok, scanner, bytes };
}

function aorOf(bytes: Uint8Array, scanner: RecordScanner): string {
  const raw = bytes.subarray(scanner.aorStart - 1, scanner.aorEnd + 1);
  return JSON.parse(decoder.decode(raw));
}

Deno.test("record: a compact registration is accepted as is", () => {
  const line = '{"addressOfRecord":"0142e2fa3543cb32bf000100620002","path":["<sip:x>"],"n":-1.5e3}';
  const { ok, scanner, bytes } = scan(line);
  assertOk(ok, scanner.error);
  assertEquals(scanner.compact, true);
  assertEquals(scanner.aorEscaped, false);
  assertEquals(
    decoder.decode(bytes.subarray(scanner.aorStart, scanner.aorEnd)),
    "0142e2fa3543cb32bf000100620002",
  );
  assertEquals([scanner.contentEnd, scanner.lineEnd], [line.length, line.length]);
});

Deno.test("record: the line ends at LF; a CR before it is not white space", () => {
  const text = '{"addressOfRecord":"a"}\r\n{"addressOfRecord":"b"}';
  const { ok, scanner } = scan(text);
  assertOk(ok);
  assertEquals(scanner.compact, true);
  assertEquals(scanner.contentEnd, 23);
  assertEquals(scanner.lineEnd, 24);
});

Deno.test("record: white space outside strings is found and compacted away", () => {
  const line = ' { "addressOfRecord" : "a b" ,\t"x" : [ 1 , { } , "c  d" ] }  \r';
  const { ok, scanner, bytes } = scan(line);
  assertOk(ok, scanner.error);
  assertEquals(scanner.compact, false);
  const end = compactInPlace(bytes, 0, scanner.contentEnd);
  const compacted = decoder.decode(bytes.subarray(0, end));
  assertEquals(compacted, '{"addressOfRecord":"a b","x":[1,{},"c  d"]}');
  const again = scan(compacted);
  assertOk(again.ok);
  assertEquals(again.scanner.compact, true);
});

Deno.test("record: escapes in the AOR are flagged; escaped keys still count", () => {
  const { ok, scanner, bytes } = scan('{"\\u0061ddressOfRecord":"x\\u0031\\/y"}');
  assertOk(ok, scanner.error);
  assertEquals(scanner.aorEscaped, true);
  assertEquals(aorOf(bytes, scanner), "x1/y");
});

Deno.test("record: only the top-level AOR counts, and the last one wins", () => {
  const nested = scan('{"x":{"addressOfRecord":"inner"},"addressOfRecord":"outer"}');
  assertOk(nested.ok);
  assertEquals(aorOf(nested.bytes, nested.scanner), "outer");
  const twice = scan('{"addressOfRecord":"first","addressOfRecord":"second"}');
  assertEquals(aorOf(twice.bytes, twice.scanner), "second");
  const onlyNested = scan('{"x":{"addressOfRecord":"inner"}}');
  assertEquals(onlyNested.scanner.error, 'missing "addressOfRecord"');
  const lastNotString = scan('{"addressOfRecord":"a","addressOfRecord":7}');
  assertEquals(lastNotString.scanner.error, '"addressOfRecord" must be a string, found a number');
});

Deno.test("record: each kind of bad line has a clear message", () => {
  const cases: [string | Uint8Array, string][] = [
    ["", "empty line"],
    ['{"addressOfRecord":"a"', "invalid JSON: unexpected end of line"],
    ['{"addressOfRecord":"a}', "invalid JSON: unterminated string"],
    ['{"addressOfRecord":"a",}', "invalid JSON: unexpected '}' at column 24"],
    ["{'addressOfRecord':'a'}", "invalid JSON: unexpected ''' at column 2"],
    ['{"addressOfRecord":"a"} x', "invalid JSON: unexpected 'x' at column 25"],
    ['{"addressOfRecord":"a"}{}', "invalid JSON: unexpected '{' at column 24"],
    ['{"addressOfRecord":"a","n":01}', "invalid JSON: unexpected '1' at column 29"],
    ['{"addressOfRecord":"a","n":1.}', "invalid JSON: unexpected '}' at column 30"],
    ['{"addressOfRecord":"a","n":tru}', "invalid JSON: unexpected '}' at column 31"],
    ['{"addressOfRecord":"a","n":NaN}', "invalid JSON: unexpected 'N' at column 28"],
    ['{"addressOfRecord":"a\\x"}', "invalid JSON: bad escape at column 22"],
    ['{"addressOfRecord":"a\\u12G4"}', "invalid JSON: bad \\u escape at column 22"],
    ['{"addressOfRecord":"a\tb"}', "invalid JSON: control character 0x09 in a string at column 22"],
    [
      new Uint8Array([...encoder.encode('{"addressOfRecord":"a'), 0xff, 0x22, 0x7d]),
      "invalid UTF-8 at column 22",
    ],
    [
      new Uint8Array([...encoder.encode('{"addressOfRecord":"'), 0xed, 0xa0, 0x80, 0x22, 0x7d]),
      "invalid UTF-8 at column 21",
    ],
    [
      new Uint8Array([...encoder.encode('{"addressOfRecord":"'), 0xc0, 0xaf, 0x22, 0x7d]),
      "invalid UTF-8 at column 21",
    ],
    ['["addressOfRecord","a"]', "not a JSON object: found an array"],
    ['"addressOfRecord"', "not a JSON object: found a string"],
    ["42", "not a JSON object: found a number"],
    ["null", "not a JSON object: found null"],
    ["hello", "invalid JSON: unexpected 'h' at column 1"],
    ['{"uri":"sip:a@b"}', 'missing "addressOfRecord"'],
    ['{"addressOfRecord":42}', '"addressOfRecord" must be a string, found a number'],
    ['{"addressOfRecord":null}', '"addressOfRecord" must be a string, found null'],
    ['{"addressOfRecord":{"id":"a"}}', '"addressOfRecord" must be a string, found an object'],
    ['{"addressOfRecord":["a"]}', '"addressOfRecord" must be a string, found an array'],
    ['{"addressOfRecord":true}', '"addressOfRecord" must be a string, found a boolean'],
    ['{"addressOfRecord":""}', '"addressOfRecord" is empty'],
    ['{"addressOfRecord":"a"\n}', "invalid JSON: unexpected end of line"],
  ];
  for (const [line, message] of cases) {
    const { ok, scanner } = scan(line);
    assertEquals(ok, false, `accepted ${line}`);
    assertEquals(
      scanner.error,
      message,
      `for ${typeof line === "string" ? line : decoder.decode(line)}`,
    );
  }
});

Deno.test("record: deep nesting needs no recursion", () => {
  const depth = 100_000;
  const line = `{"addressOfRecord":"a","x":${"[".repeat(depth)}${"]".repeat(depth)}}`;
  const { ok, scanner } = scan(line);
  assertOk(ok, scanner.error);
});

function randomValue(next: () => number, depth: number): unknown {
  const kind = Math.floor(next() * (depth > 3 ? 4 : 6));
  const chars = 'aZ0 "\\/\u00e9\u20ac\u{1F600}\t\u0001{}[],:';
  switch (kind) {
    case 0:
      return Math.floor(next() * 2000 - 1000) / (next() < 0.5 ? 1 : 8);
    case 1:
      return Array.from(
        { length: Math.floor(next() * 6) },
        () => chars[Math.floor(next() * chars.length)],
      ).join("");
    case 2:
      return next() < 0.5 ? null : next() < 0.5;
    case 3:
      return "sip:" + Math.floor(next() * 1e9).toString(36);
    case 4:
      return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = Math.floor(next() * 4); i > 0; i--) {
        object[next() < 0.2 ? "addressOfRecord" : `k${i}`] = randomValue(next, depth + 1);
      }
      return object;
    }
  }
}

/** What the scanner must accept: JSON.parse's verdict plus the AOR rule. */
function oracle(text: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const aor = (value as Record<string, unknown>).addressOfRecord;
  return typeof aor === "string" && aor !== "" ? aor : undefined;
}

Deno.test("record: agrees with JSON.parse on 20 000 random and mutated lines", () => {
  const next = seededRandom(42);
  const noise = ' \t\r{}[]",:\\0123456789.eE+-tfnulx\u0000\u001f';
  for (let n = 0; n < 20_000; n++) {
    const object = randomValue(next, 1) as Record<string, unknown>;
    const base =
      typeof object === "object" && object !== null && !Array.isArray(object) && next() < 0.7
        ? { addressOfRecord: "a" + Math.floor(next() * 1e6), ...object }
        : object;
    let text = JSON.stringify(base, null, next() < 0.2 ? 1 : undefined).replaceAll("\n", " ");
    for (let m = Math.floor(next() * 3); m > 0; m--) {
      const at = Math.floor(next() * (text.length + 1));
      const op = next();
      if (op < 0.4) text = text.slice(0, at) + text.slice(at + 1);
      else if (op < 0.8) {
        text = text.slice(0, at) + noise[Math.floor(next() * noise.length)] + text.slice(at);
      } else text = text.slice(0, at) + text.slice(at, at + 3) + text.slice(at);
    }
    const { ok, scanner, bytes } = scan(text);
    const expected = oracle(text);
    const isObject = text.trimStart().startsWith("{");
    assertEquals(
      ok,
      expected !== undefined && isObject,
      `line ${JSON.stringify(text)}: ${scanner.error}`,
    );
    if (!ok) continue;
    assertEquals(aorOf(bytes, scanner), expected, text);
    // Compacting keeps the value and leaves a compact line.
    const copy = bytes.slice();
    const end = compactInPlace(copy, 0, scanner.contentEnd);
    const compacted = decoder.decode(copy.subarray(0, end));
    assertEquals(JSON.parse(compacted), JSON.parse(text), text);
    if (scanner.compact) assertEquals(compacted, text.slice(0, scanner.contentEnd));
    const again = scan(compacted);
    assertOk(again.ok && again.scanner.compact, compacted);
  }
});

Deno.test("record: UTF-8 in strings is validated like a fatal TextDecoder", () => {
  const next = seededRandom(7);
  const strict = new TextDecoder("utf-8", { fatal: true });
  const prefix = encoder.encode('{"addressOfRecord":"a","x":"');
  for (let n = 0; n < 20_000; n++) {
    const body = Array.from(
      { length: 1 + Math.floor(next() * 5) },
      () => 0x80 + Math.floor(next() * 0x80),
    );
    if (next() < 0.5) body.unshift(0xc2 + Math.floor(next() * 0x33));
    const bytes = new Uint8Array([...prefix, ...body, 0x22, 0x7d]);
    let valid = true;
    try {
      strict.decode(new Uint8Array(body));
    } catch {
      valid = false;
    }
    assertEquals(scan(bytes).ok, valid, `bytes ${body.map((b) => b.toString(16)).join(" ")}`);
  }
});
