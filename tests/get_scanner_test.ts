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
