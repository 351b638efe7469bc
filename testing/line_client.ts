/**
 * A client of the line protocol, for tests and benchmarks.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A client of the line protocol. */
export class LineClient {
  /** The connection. */
  readonly conn: Deno.TcpConn;
  #buf = new Uint8Array(0);
  #eof = false;

  /** Wraps a connection; see {@linkcode LineClient.connect}. */
  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  /** Connects to 127.0.0.1:`port`. */
  static async connect(port: number): Promise<LineClient> {
    return new LineClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Sends all of `data`. */
  async send(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    let done = 0;
    while (done < bytes.length) done += await this.conn.write(bytes.subarray(done));
  }

  /** Reads exactly `n` lines (without their `\n`); throws on early EOF. */
  async lines(n: number): Promise<string[]> {
    const out: string[] = [];
    let start = 0;
    while (out.length < n) {
      const lf = this.#buf.indexOf(0x0a, start);
      if (lf >= 0) {
        out.push(decoder.decode(this.#buf.subarray(start, lf)));
        start = lf + 1;
        continue;
      }
      this.#buf = this.#buf.slice(start);
      start = 0;
      if (!await this.#fill()) {
        throw new Error(`connection closed after ${out.length} of ${n} lines`);
      }
    }
    this.#buf = this.#buf.slice(start);
    return out;
  }

  /** Reads one line. */
  async line(): Promise<string> {
    return (await this.lines(1))[0];
  }

  /** Reads until the server closes; returns the bytes not yet consumed. A reset counts as closed. */
  async rest(): Promise<Uint8Array> {
    while (await this.#fill());
    const rest = this.#buf;
    this.#buf = new Uint8Array(0);
    return rest;
  }

  /** Resolves once the server has closed the connection. */
  async closed(): Promise<void> {
    await this.rest();
  }

  /** Half-closes: no more requests. */
  async closeWrite(): Promise<void> {
    await this.conn.closeWrite();
  }

  /** Closes the connection, if it is not already. */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const chunk = new Uint8Array(64 * 1024);
    let n: number | null;
    try {
      n = await this.conn.read(chunk);
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) n = null;
      else throw error;
    }
    if (n === null) {
      this.#eof = true;
      return false;
    }
    const joined = new Uint8Array(this.#buf.length + n);
    joined.set(this.#buf);
    joined.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = joined;
    return true;
  }
}
