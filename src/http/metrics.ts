import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { sendJson } from './health.js';

export interface MetricsEndpoint {
  registry: Registry;
  /** Off: /metrics answers 404 (production without a token). */
  enabled: boolean;
  /** When set, scrapers must send `Authorization: Bearer <token>`. */
  token?: string;
}

/** Prometheus scrape endpoint. */
export async function respondMetrics(req: IncomingMessage, res: ServerResponse, endpoint: MetricsEndpoint): Promise<void> {
  if (!endpoint.enabled) return sendJson(res, 404, { error: 'Not found' });
  if (endpoint.token && !bearerMatches(req.headers.authorization, endpoint.token)) {
    res.setHeader('www-authenticate', 'Bearer');
    return sendJson(res, 401, { error: 'Unauthorized' });
  }
  const body = await endpoint.registry.metrics();
  res.writeHead(200, { 'content-type': endpoint.registry.contentType });
  res.end(body);
}

// Comparing digests keeps the comparison constant-time whatever the length of what was sent.
function bearerMatches(header: string | undefined, token: string): boolean {
  const given = /^Bearer (.+)$/.exec(header ?? '')?.[1] ?? '';
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(token));
}
