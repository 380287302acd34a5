/**
 * Where a request comes from, for the limits and audit entries that have no credential to go by.
 *
 * On Cloudflare, `CF-Connecting-IP` is set by the edge from the connection and cannot be chosen by
 * the client, so it is the source. Locally it can: `wrangler dev` (Miniflare's entry worker) fills
 * it in from the socket only when the client did not send one, so a client-supplied value passes
 * through, and nothing in the request (not even `request.cf`, which Miniflare fakes) tells the two
 * apart. Which one applies is therefore configuration: `CLIENT_ADDRESS` is `socket` in wrangler.toml
 * (local: the header is ignored and the source is the loopback socket every local client connects
 * through, `npm run dev` listening on 127.0.0.1 only) and `npm run deploy` sets `cf-connecting-ip`.
 */

/** The source of every request on a local stack: the loopback socket. */
export const LOCAL_SOCKET_SOURCE = "socket:loopback";

const IP_ADDRESS = /^[0-9A-Fa-f:.]{2,45}$/;

interface ClientAddressEnv {
  CLIENT_ADDRESS?: string;
}

/**
 * The request's source as an identifier: `ip:<CF-Connecting-IP>` behind Cloudflare's edge
 * (`ip:unknown` without the header), `socket:loopback` locally whatever headers the client sent.
 */
export function clientSource(request: Request, env: ClientAddressEnv): string {
  if (env.CLIENT_ADDRESS !== "cf-connecting-ip") return LOCAL_SOCKET_SOURCE;
  const address = request.headers.get("CF-Connecting-IP")?.trim() ?? "";
  // The edge sends an IPv4 or IPv6 address; anything else cannot be one (and must not grow keys).
  return `ip:${IP_ADDRESS.test(address) ? address.toLowerCase() : "unknown"}`;
}
