import type { IncomingMessage, ServerResponse } from 'node:http';

export type ReadinessCheck = () => Promise<void>;

/** Liveness: the process is up and serving HTTP. */
export function respondHealth(res: ServerResponse): void {
  sendJson(res, 200, { status: 'ok' });
}

/**
 * Readiness: every dependency answers within the timeout, and the server is not shutting down.
 * Failures name the dependency but never include connection strings or error text.
 */
export async function respondReady(
  res: ServerResponse,
  checks: Record<string, ReadinessCheck>,
  state: { shuttingDown: boolean },
  timeoutMs = 2000,
): Promise<void> {
  const results = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      try {
        await withTimeout(check(), timeoutMs);
        return [name, 'ok'] as const;
      } catch {
        return [name, 'unavailable'] as const;
      }
    }),
  );
  const ready = !state.shuttingDown && results.every(([, status]) => status === 'ok');
  sendJson(res, ready ? 200 : 503, {
    status: state.shuttingDown ? 'shutting_down' : ready ? 'ready' : 'unavailable',
    checks: Object.fromEntries(results),
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout')), ms);
    promise.then(resolve, reject).finally(() => clearTimeout(timer));
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

export function isBodyTooLarge(req: IncomingMessage, maxBytes: number): boolean {
  const length = Number(req.headers['content-length'] ?? 0);
  return Number.isFinite(length) && length > maxBytes;
}
