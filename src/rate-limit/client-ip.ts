import type { IncomingMessage } from 'node:http';

/**
 * The client's address: the socket's, or, behind `trustedHops` proxies, the address the
 * outermost trusted proxy saw (X-Forwarded-For is appended to by each hop, so only the last
 * `trustedHops` entries can be trusted; anything before them is whatever the client sent).
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
  return hops[hops.length - trustedHops] ?? hops[0] ?? socketAddress;
}
