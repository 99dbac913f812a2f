import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { clientIp } from '../src/rate-limit/client-ip.js';

const request = (forwardedFor?: string | string[]) =>
  ({ socket: { remoteAddress: '10.0.0.9' }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } }) as unknown as IncomingMessage;

describe('client address', () => {
  it('is the socket address when no proxy is trusted, whatever the header says', () => {
    expect(clientIp(request('203.0.113.7'), 0)).toBe('10.0.0.9');
  });

  it('is the entry the outermost trusted proxy appended', () => {
    expect(clientIp(request('203.0.113.7, 198.51.100.4'), 1)).toBe('198.51.100.4');
    expect(clientIp(request('203.0.113.7, 198.51.100.4, 192.0.2.1'), 2)).toBe('198.51.100.4');
    expect(clientIp(request(['203.0.113.7', '198.51.100.4']), 2)).toBe('203.0.113.7');
  });

  it('is the socket address when the header has fewer entries than the trusted hops, not an entry the client wrote', () => {
    expect(clientIp(request('203.0.113.7'), 2)).toBe('10.0.0.9');
    expect(clientIp(request('203.0.113.7, 198.51.100.4'), 3)).toBe('10.0.0.9');
    expect(clientIp(request(), 1)).toBe('10.0.0.9');
    expect(clientIp(request(' , '), 1)).toBe('10.0.0.9');
  });
});
