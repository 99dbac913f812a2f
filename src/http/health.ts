import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ProviderHealth, ReadProviderHealth } from '../providers/provider-health.js';

export type ReadinessCheck = () => Promise<void>;

/** Liveness: the process is up and serving HTTP. */
export function respondHealth(res: ServerResponse): void {
  sendJson(res, 200, { status: 'ok' });
}

export interface ReadinessChecks {
  /** Each must answer for the instance to take traffic. */
  required: Record<string, ReadinessCheck>;
  /**
   * Reported but never failing readiness: an LLM provider outage must not also take away
   * sign-in, history and usage by pulling every instance out of the load balancer.
   */
  advisory: Record<string, ReadinessCheck>;
  /**
   * Each provider's circuits, reported and never failing readiness: while one provider is open
   * the instance still serves from the others, and everything else works.
   */
  providers?: ReadProviderHealth;
}

/**
 * Readiness: every required dependency answers within the timeout, and the server is not shutting
 * down. Failures name the dependency but never include connection strings or error text.
 */
export async function respondReady(
  res: ServerResponse,
  checks: ReadinessChecks,
  state: { shuttingDown: boolean },
  timeoutMs = 2000,
): Promise<void> {
  const run = (group: Record<string, ReadinessCheck>) =>
    Promise.all(
      Object.entries(group).map(async ([name, check]) => {
        try {
          await withTimeout(check(), timeoutMs);
          return [name, 'ok'] as const;
        } catch {
          return [name, 'unavailable'] as const;
        }
      }),
    );
  const [required, advisory, providers] = await Promise.all([
    run(checks.required),
    run(checks.advisory),
    checks.providers && withTimeout(checks.providers(), timeoutMs).then(providerStates, () => 'unavailable' as const),
  ]);
  const ready = !state.shuttingDown && required.every(([, status]) => status === 'ok');
  sendJson(res, ready ? 200 : 503, {
    status: state.shuttingDown ? 'shutting_down' : ready ? 'ready' : 'unavailable',
    checks: Object.fromEntries([...required, ...advisory]),
    ...(providers ? { providers } : {}),
  });
}

/** `{ [provider]: { state, deployments: { [upstream model]: state } } }`: the states, nothing of how to reach them. */
function providerStates(providers: ProviderHealth[]) {
  return Object.fromEntries(
    providers.map((p) => [p.id, { state: p.state, deployments: Object.fromEntries(p.deployments.map((d) => [d.upstreamModel, d.state])) }]),
  );
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
