import { assertEquals } from "./assert.ts";
import { LINE_TOO_LONG, LineFramer, NO_LINE } from "../lib/protocol/line_framer.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Feeds `input` to a framer in pieces cut at `cuts`, as a connection would; returns the lines. */
function frame(input: Uint8Array, cuts: number[], maxLine = 1024): (string | "TOO LONG")[] {
  const framer = new LineFramer(maxLine);
  const buf = new Uint8Array(input.length);
  const lines: (string | "TOO LONG")[] = [];
  let len = 0;
  let pos = 0;
  for (const cut of [...cuts, input.length]) {
    buf.set(input.subarray(len, cut), len);
    len = cut;
    for (;;) {
      const next = framer.next(buf, pos, len);
      if (next === NO_LINE) break;
      if (next === LINE_TOO_LONG) return [...lines, "TOO LONG"];
      lines.push(decoder.decode(buf.subarray(framer.start, framer.end)));
      pos = next;
    }
  }
  return lines;
}

Deno.test("lines: LF and CRLF end lines; spaces and tabs around are trimmed", () => {
  const input = encoder.encode("a\nb\r\n  c \t\r\n\n \r\nd\re\n x y \n");
  assertEquals(frame(input, []), ["a", "b", "c", "", "", "d\re", "x y"]);
});

Deno.test("lines: every split point gives the same lines", () => {
  const input = encoder.encode("0142e2fa3543cb32bf000100620002\r\nunknown\n\n  padded\t\r\nlast\n");
  const whole = frame(input, []);
  for (let cut = 0; cut <= input.length; cut++) {
    assertEquals(frame(input, [cut]), whole, `cut at ${cut}`);
  }
  for (let a = 0; a <= input.length; a += 3) {
    for (let b = a; b <= input.length; b += 5) assertEquals(frame(input, [a, b]), whole);
  }
  // One byte at a time.
  assertEquals(frame(input, Array.from({ length: input.length }, (_, i) => i)), whole);
});

Deno.test("lines: max-line counts the bytes before LF or CRLF", () => {
  const at = (n: number, end: string) => encoder.encode("x".repeat(n) + end);
  assertEquals(frame(at(1024, "\n"), []), ["x".repeat(1024)]);
  assertEquals(frame(at(1024, "\r\n"), []), ["x".repeat(1024)]);
  assertEquals(frame(at(1025, "\n"), []), ["TOO LONG"]);
  assertEquals(frame(at(1025, "\r\n"), []), ["TOO LONG"]);
  // An incomplete line is refused as soon as it cannot fit any more.
  const framer = new LineFramer(1024);
  assertEquals(framer.next(at(1024, ""), 0, 1024), NO_LINE);
  assertEquals(framer.next(at(1024, "\r"), 0, 1025), NO_LINE);
  assertEquals(framer.next(at(1025, ""), 0, 1025), LINE_TOO_LONG);
  assertEquals(framer.next(at(1025, "\r"), 0, 1026), LINE_TOO_LONG);
});

Deno.test("lines: earlier lines are answered before a too-long one", () => {
  const input = encoder.encode("a\nb\n" + "x".repeat(2000) + "\nc\n");
  assertEquals(frame(input, [], 1024), ["a", "b", "TOO LONG"]);
});

Deno.test("lines: last() frames an unterminated final line", () => {
  const framer = new LineFramer(8);
  const buf = encoder.encode("  abc \r");
  assertEquals(framer.last(buf, 0, buf.length), true);
  assertEquals(decoder.decode(buf.subarray(framer.start, framer.end)), "abc");
  assertEquals(framer.last(encoder.encode("123456789"), 0, 9), false);
});
