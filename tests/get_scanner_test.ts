import { assertEquals } from "./assert.ts";
import { hashBytes } from "../lib/directory/directory.ts";
import { GetScanner } from "../lib/protocol/redis/get_scanner.ts";

const encoder = new TextEncoder();

/** The keys (as their hashes) and the end that a scan of `text` finds. */
function scan(text: string, batch = 32): { hashes: number[]; end: number } {
  const bytes = encoder.encode(text);
  const scanner = new GetScanner(batch);
  const n = scanner.scan(bytes, 0, bytes.length);
  return { hashes: [...scanner.hashes.subarray(0, n)], end: scanner.end };
}

function hash(key: string): number {
  const bytes = encoder.encode(key);
  return hashBytes(bytes, 0, bytes.length);
}

const bulk = (...args: string[]) =>
  `*${args.length}\r\n${args.map((a) => `$${encoder.encode(a).length}\r\n${a}\r\n`).join("")}`;

Deno.test("get scanner: multibulk and inline GETs, any case, until something else", () => {
  const gets = bulk("GET", "a b") + bulk("get", "k2") + "GeT k3\r\n" + "GET k4\n";
  assertEquals(scan(gets + bulk("PING")), {
    hashes: ["a b", "k2", "k3", "k4"].map(hash),
    end: encoder.encode(gets).length,
  });
});

Deno.test("get scanner: stops before what is not a whole two-argument GET", () => {
  const first = bulk("GET", "k1");
  const end = encoder.encode(first).length;
  for (
    const rest of [
      bulk("GET", "k2").slice(0, -1), // not all there yet
      bulk("GET", "k2", "k3"), // wrong arity
      bulk("MGET", "k2"),
      bulk("GETX", "k2"),
      "GET 'k2'\r\n", // quoted: the parser's business
      "GET k2 k3\r\n",
      "GET \r\n",
      "GET k2", // no line end yet
      "$3\r\nGET\r\n",
    ]
  ) {
    assertEquals(scan(first + rest), { hashes: [hash("k1")], end }, JSON.stringify(rest));
  }
  assertEquals(scan(""), { hashes: [], end: 0 });
});

Deno.test("get scanner: at most a batch", () => {
  const text = Array.from({ length: 5 }, (_, i) => bulk("GET", `k${i}`)).join("");
  const three = Array.from({ length: 3 }, (_, i) => bulk("GET", `k${i}`)).join("");
  assertEquals(scan(text, 3), {
    hashes: ["k0", "k1", "k2"].map(hash),
    end: encoder.encode(three).length,
  });
});

Deno.test("get scanner: multibulkKey takes a whole GET in the form Redis accepts, and nothing else", () => {
  const scanner = new GetScanner(32);
  const at = (text: string) => {
    const bytes = encoder.encode("xx" + text);
    const key = scanner.multibulkKey(bytes, 2, bytes.length);
    return key < 0 ? -1 : [key - 2, scanner.keyEnd - 2];
  };
  assertEquals(at(bulk("GET", "k1") + "PING\r\n"), [17, 19]);
  assertEquals(at(bulk("get", "")), [17, 17]);
  assertEquals(at(bulk("GET", "k".repeat(789))), [19, 19 + 789]);
  // Two bytes after the key that are not a line end: the parser's business.
  assertEquals(at("*2\r\n$3\r\nGET\r\n$2\r\nk1xx"), -1);
  for (
    const text of [
      "*2\r\n$3\r\nGET\r\n$02\r\nk1\r\n", // a leading zero: Redis refuses it
      "*2\r\n$3\r\nGET\r\n$00\r\n\r\n",
      "*2\r\n$3\r\nGET\r\n$\r\n\r\n", // no length
      "*2\r\n$3\r\nGET\r\n$-1\r\n",
      `*2\r\n$3\r\nGET\r\n$1234567890\r\n`, // ten digits
      "*02\r\n$3\r\nGET\r\n$2\r\nk1\r\n",
      "*2\r\n$03\r\nGET\r\n$2\r\nk1\r\n",
      bulk("GET", "k1").slice(0, -1), // not all there yet
      bulk("GET", "k1", "k2"),
      bulk("GETX", "k1"),
    ]
  ) {
    assertEquals(at(text), -1, JSON.stringify(text));
  }
});
