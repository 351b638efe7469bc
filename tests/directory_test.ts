import { assertEquals } from "./assert.ts";
import { DirectoryBuilder, hashBytes } from "../lib/directory/directory.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Builds a directory of `count` keys "k0".."k{count-1}" with answers "v…\n" in one chunk. */
function build(count: number) {
  const parts: string[] = [];
  const spans: [number, number, number, number][] = [];
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const key = `k${i}`;
    const answer = `v${i}\n`;
    parts.push(key, answer);
    spans.push([pos, key.length, pos + key.length, answer.length]);
    pos += key.length + answer.length;
  }
  const chunk = encoder.encode(parts.join(""));
  const builder = new DirectoryBuilder(4);
  const c = builder.addChunk(chunk);
  for (const [keyOff, keyLen, ansOff, ansLen] of spans) {
    assertEquals(builder.add(c, keyOff, keyLen, c, ansOff, ansLen), false);
  }
  return builder.finish();
}

Deno.test("directory: finds every key, after many table growths", () => {
  const directory = build(50_000);
  assertEquals(directory.size, 50_000);
  for (let i = 0; i < 50_000; i += 7) {
    assertEquals(decoder.decode(directory.get(`k${i}`)), `v${i}\n`);
  }
  assertEquals(directory.get("k50000"), undefined);
  assertEquals(directory.get(""), undefined);
  assertEquals(directory.get("k"), undefined);
});

Deno.test("directory: find() looks keys up where they lie in a larger buffer", () => {
  const directory = build(100);
  const buf = encoder.encode("xxk42\nk7 k99");
  const id = directory.find(buf, 2, 5);
  assertEquals(decoder.decode(directory.answer(id)), "v42\n");
  assertEquals(directory.find(buf, 6, 8) >= 0, true);
  assertEquals(directory.find(buf, 9, 12) >= 0, true);
  assertEquals(directory.find(buf, 6, 9), -1); // "k7 "
});

Deno.test("directory: adding a key again replaces its answer and reports a duplicate", () => {
  const chunk = encoder.encode("aOLD\naNEW\nb1\n");
  const builder = new DirectoryBuilder();
  const c = builder.addChunk(chunk);
  assertEquals(builder.add(c, 0, 1, c, 1, 4), false);
  assertEquals(builder.add(c, 5, 1, c, 6, 4), true);
  assertEquals(builder.add(c, 10, 1, c, 11, 2), false);
  const directory = builder.finish();
  assertEquals(directory.size, 2);
  assertEquals(decoder.decode(directory.get("a")), "NEW\n");
  assertEquals(decoder.decode(directory.get("b")), "1\n");
});

Deno.test("directory: keys and answers may live in different chunks", () => {
  const builder = new DirectoryBuilder();
  const keys = builder.addChunk(encoder.encode("alpha"));
  const answers = builder.addChunk(encoder.encode("{}\n"));
  builder.add(keys, 0, 5, answers, 0, 3);
  assertEquals(decoder.decode(builder.finish().get("alpha")), "{}\n");
});

Deno.test("directory: keys with equal hashes are told apart", () => {
  // Find two short keys whose FNV-1a hashes collide in the low bits used by
  // a small table, and check both resolve to their own answers.
  const seen = new Map<number, string>();
  let pair: [string, string] | undefined;
  for (let i = 0; !pair; i++) {
    const key = `c${i}`;
    const bytes = encoder.encode(key);
    const slot = hashBytes(bytes, 0, bytes.length) & 1023;
    const other = seen.get(slot);
    if (other) pair = [other, key];
    seen.set(slot, key);
  }
  const text = `${pair[0]}${pair[1]}12`;
  const builder = new DirectoryBuilder();
  const c = builder.addChunk(encoder.encode(text));
  const [a, b] = pair;
  builder.add(c, 0, a.length, c, text.length - 2, 1);
  builder.add(c, a.length, b.length, c, text.length - 1, 1);
  const directory = builder.finish();
  assertEquals(decoder.decode(directory.get(a)), "1");
  assertEquals(decoder.decode(directory.get(b)), "2");
});

Deno.test("directory: warm() only reads, for present, absent and empty", () => {
  const directory = build(1000);
  const keys = ["k0", "k999", "k500", "absent", "k1000", ""].map((k) => encoder.encode(k));
  const hashes = new Uint32Array(keys.map((k) => hashBytes(k, 0, k.length)));
  const before = keys.map((k) => directory.find(k, 0, k.length));
  assertEquals(typeof directory.warm(hashes, hashes.length), "number");
  assertEquals(keys.map((k) => directory.find(k, 0, k.length)), before);
  assertEquals(before.map((id) => id >= 0), [true, true, true, false, false, false]);
  const empty = new DirectoryBuilder(0).finish();
  assertEquals(typeof empty.warm(hashes, hashes.length), "number");
  assertEquals(empty.find(keys[0], 0, keys[0].length), -1);
});
