import type { IncomingMessage } from 'node:http';

/**
 * The client's address: the socket's, or, behind `trustedHops` proxies, the address the
 * outermost trusted proxy saw (X-Forwarded-For is appended to by each hop, so only the last
 * `trustedHops` entries can be trusted; anything before them is whatever the client sent).
 * A header with fewer entries than that did not come through every trusted proxy, so none of it
 * is trusted: the socket's address is used.
 */
export function clientIp(req: IncomingMessage | undefined, trustedHops: number): string {
  if (!req) return 'unknown';
  const socketAddress = req.socket?.remoteAddress ?? 'unknown';
  if (trustedHops === 0) return socketAddress;
  const header = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((hop) => hop.trim())
    .filter(Boolean);
  return hops.length >= trustedHops ? hops[hops.length - trustedHops]! : socketAddress;
}
