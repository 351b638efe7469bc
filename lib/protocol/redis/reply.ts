/**
 * Encoding replies in RESP2 and RESP3.
 *
 * @module
 */

import type { Replies } from "../protocol.ts";

/** Ends a reply line; byte by byte, which is cheaper than copying a 2-byte array. */
function crlf(out: Replies): void {
  out.writeByte(0x0d);
  out.writeByte(0x0a);
}

/** A type byte, a decimal and a line end: the header of most replies. */
function header(out: Replies, type: number, n: number): void {
  out.writeByte(type);
  out.writeDecimal(n);
  crlf(out);
}

const encoder = new TextEncoder();

/** RESP2 (the default) or RESP3 (after `HELLO 3`). */
export type Resp = 2 | 3;

/**
 * Writes RESP replies into a protocol's {@linkcode Replies}: the reply
 * shapes of Redis 7.0, in the connection's protocol version.
 *
 * @example
 * ```ts
 * import { RespWriter } from "./reply.ts";
 * import { Output, OutputPool } from "../../transport/output.ts";
 * import { ProtocolCounters } from "../../operations/counters.ts";
 * import assert from "node:assert/strict";
 * const out = new Output(new OutputPool(), new ProtocolCounters("redis"), 1 << 20, false, () => "");
 * const resp = new RespWriter();
 * resp.integer(out, 42);
 * resp.null(out, 3);
 * assert.equal(new TextDecoder().decode(out.bytes()), ":42\r\n_\r\n");
 * ```
 */
export class RespWriter {
  /** `+text`. */
  simple(out: Replies, text: Uint8Array): void {
    out.writeByte(0x2b);
    out.write(text);
    crlf(out);
  }

  /**
   * `-text` (text without the dash). `text` is one char code per byte (see
   * `byteText`): it may quote what a client sent, so a CR or LF in it
   * becomes a space, as Redis makes it, or it would end the reply early and
   * every later reply on the connection would answer the wrong command.
   */
  error(out: Replies, text: string): void {
    out.writeByte(0x2d);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      out.writeByte(c === 0x0d || c === 0x0a ? 0x20 : c & 0xff);
    }
    crlf(out);
  }

  /** `:n`. */
  integer(out: Replies, n: number): void {
    header(out, 0x3a, n);
  }

  /** `$len` and the bytes. */
  bulk(out: Replies, bytes: Uint8Array): void {
    header(out, 0x24, bytes.length);
    out.write(bytes);
    crlf(out);
  }

  /** A string as a bulk string. */
  bulkText(out: Replies, text: string): void {
    this.bulk(out, encoder.encode(text));
  }

  /** The null bulk string: `$-1` in RESP2, `_` in RESP3. */
  null(out: Replies, resp: Resp): void {
    if (resp === 3) {
      out.writeByte(0x5f);
      crlf(out);
    } else {
      header(out, 0x24, -1);
    }
  }

  /** `*n`: an array of `n` replies follows. */
  array(out: Replies, n: number): void {
    header(out, 0x2a, n);
  }

  /** A map of `n` pairs follows: `%n` in RESP3, an array of `2n` in RESP2. */
  map(out: Replies, n: number, resp: Resp): void {
    if (resp === 3) {
      header(out, 0x25, n);
    } else {
      this.array(out, n * 2);
    }
  }

  /** Text as a verbatim string (`=len` `txt:…`) in RESP3, a bulk string in RESP2. */
  verbatim(out: Replies, text: string, resp: Resp): void {
    if (resp !== 3) {
      this.bulkText(out, text);
      return;
    }
    const bytes = encoder.encode(text);
    header(out, 0x3d, bytes.length + 4);
    out.write(encoder.encode("txt:"));
    out.write(bytes);
    crlf(out);
  }
}
