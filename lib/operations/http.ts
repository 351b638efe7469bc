/**
 * The operations endpoints, on their own port (never the lookup ports):
 * `/metrics` for Prometheus, `/healthz` and `/readyz` for load balancers and
 * orchestrators.
 *
 * @module
 */

/** Options of {@linkcode serveHttp}. */
export interface HttpOptions {
  /** Address to listen on. */
  hostname: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** The metrics exposition, built at each scrape. */
  metrics: () => string;
  /** Whether lookups may be sent here now: data loaded, listening, not stopping. */
  ready: () => boolean;
}

/** A running operations endpoint. */
export interface HttpEndpoint {
  /** Where it listens. */
  readonly addr: Deno.NetAddr;
  /** Stops it; resolves once closed. */
  shutdown(): Promise<void>;
}

const TEXT = { "content-type": "text/plain; charset=utf-8" };
const METRICS = { "content-type": "text/plain; version=0.0.4; charset=utf-8" };

/**
 * Answers a request to the operations endpoints: `GET` or `HEAD` of
 * `/healthz` (200 while the process serves), `/readyz` (200 when ready, 503
 * before and while stopping) and `/metrics`; 404 for anything else, 405 for
 * other methods. `HEAD` gets the status and headers only.
 *
 * @example
 * ```ts
 * import { handleRequest } from "./http.ts";
 * import assert from "node:assert/strict";
 * const options = { metrics: () => "", ready: () => false };
 * const response = handleRequest(new Request("http://sipdir/readyz"), options);
 * assert.equal(response.status, 503);
 * ```
 */
export function handleRequest(
  request: Request,
  options: Pick<HttpOptions, "metrics" | "ready">,
): Response {
  const path = new URL(request.url).pathname;
  let status: number;
  let body: string;
  let headers: Record<string, string> = TEXT;
  switch (path) {
    case "/healthz":
      status = 200;
      body = "ok\n";
      break;
    case "/readyz":
      [status, body] = options.ready() ? [200, "ready\n"] : [503, "not ready\n"];
      break;
    case "/metrics":
      status = 200;
      body = "";
      headers = METRICS;
      break;
    default:
      return new Response("not found\n", { status: 404, headers: TEXT });
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("method not allowed\n", {
      status: 405,
      headers: { ...TEXT, allow: "GET, HEAD" },
    });
  }
  if (path === "/metrics" && request.method === "GET") body = options.metrics();
  return new Response(request.method === "HEAD" ? null : body, { status, headers });
}

/**
 * Serves the operations endpoints with `Deno.serve`. Throws if the address
 * cannot be bound.
 *
 * @example
 * ```ts
 * import { serveHttp } from "./http.ts";
 * import assert from "node:assert/strict";
 * const endpoint = serveHttp({ hostname: "127.0.0.1", port: 0, metrics: () => "", ready: () => true });
 * const response = await fetch(`http://127.0.0.1:${endpoint.addr.port}/healthz`);
 * assert.equal(await response.text(), "ok\n");
 * await endpoint.shutdown();
 * ```
 */
export function serveHttp(options: HttpOptions): HttpEndpoint {
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    onListen: () => {},
  }, (request) => handleRequest(request, options));
  return {
    addr: server.addr as Deno.NetAddr,
    shutdown: () => server.shutdown(),
  };
}
