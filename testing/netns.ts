/**
 * A network namespace joined to this host by a veth pair: a second host on
 * the same machine, for tests of what a client on another address sees.
 * Needs root (CAP_NET_ADMIN) and `ip` from iproute2.
 *
 * @module
 */

/** Runs `ip` with `args`; throws with its stderr when it fails. */
async function ip(...args: string[]): Promise<void> {
  const output = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!output.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(output.stderr).trim()}`);
  }
}

/** A namespace with one interface, `clientAddress`, that reaches this host's `hostAddress`. */
export class NetworkNamespace {
  /** The namespace's name (`ip netns exec NAME …`). */
  readonly name: string;
  /** This host's end of the link. */
  readonly hostAddress: string;
  /** The namespace's end of the link. */
  readonly clientAddress: string;
  readonly #hostInterface: string;

  private constructor(name: string, hostInterface: string, subnet: number) {
    this.name = name;
    this.#hostInterface = hostInterface;
    this.hostAddress = `10.213.${subnet}.1`;
    this.clientAddress = `10.213.${subnet}.2`;
  }

  /**
   * Creates a namespace and its link, on a /30 of 10.213.0.0/16 chosen at
   * random (so that concurrent test runs rarely collide).
   */
  static async create(): Promise<NetworkNamespace> {
    if (Deno.uid() !== 0) throw new Error("network namespaces need root");
    // Unique enough on one host, and short: interface names have 15 bytes at most.
    const random = crypto.getRandomValues(new Uint16Array(1))[0];
    const id = `${Deno.pid % 100_000}x${random % 1000}`;
    const subnet = random % 250 + 1;
    const namespace = new NetworkNamespace(`sipdir-${id}`, `sdh${id}`, subnet);
    const peer = `sdc${id}`;
    await ip("netns", "add", namespace.name);
    try {
      await ip("link", "add", namespace.#hostInterface, "type", "veth", "peer", "name", peer);
      await ip("link", "set", peer, "netns", namespace.name);
      await ip("addr", "add", `${namespace.hostAddress}/30`, "dev", namespace.#hostInterface);
      await ip("link", "set", namespace.#hostInterface, "up");
      const inside = ["netns", "exec", namespace.name, "ip"];
      await ip(...inside, "addr", "add", `${namespace.clientAddress}/30`, "dev", peer);
      await ip(...inside, "link", "set", peer, "up");
      await ip(...inside, "link", "set", "lo", "up");
    } catch (error) {
      await namespace.close();
      throw error;
    }
    return namespace;
  }

  /** Runs a command inside the namespace; resolves to its exit code and output. */
  async run(command: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const output = await new Deno.Command("ip", {
      args: ["netns", "exec", this.name, ...command],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  }

  /** Removes the link and the namespace. */
  async close(): Promise<void> {
    await ip("link", "del", this.#hostInterface).catch(() => {});
    await ip("netns", "del", this.name).catch(() => {});
  }
}
