import type { Deployment, ModelInfo } from '../model-catalog.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import type { ChatProvider, FailureKind, ProviderFailure } from './provider.js';
import type { ProviderKind } from './provider-settings.js';

/** A configured provider, ready to call. */
export interface ProviderHandle {
  id: string;
  kind: ProviderKind;
  chat: ChatProvider;
  /** Accepts an assistant message as the start of its reply. */
  prefill: boolean;
  timeoutMs?: number;
}

/** One place a reply may be generated: a catalog model's deployment on its provider. */
export interface RouteTarget {
  /** The catalog model (the one asked for, or a fallback). */
  model: ModelInfo;
  deployment: Deployment;
  provider: ProviderHandle;
  /** Names the deployment for the circuit breaker and metrics: provider and upstream model. */
  key: string;
  /** Whether a reply cut short may be continued here from its partial text. */
  prefill: boolean;
  /** The longest wait for the first token, and between tokens. */
  timeoutMs: number;
}

/** Names a deployment for the circuit breaker, metrics and reports: its provider and upstream model. */
export const deploymentKey = (providerId: string, upstreamModel: string) => `${providerId}/${upstreamModel}`;

/** The circuit breaker as the router uses it. */
export type Circuit = Pick<CircuitBreaker, 'admit' | 'recordSuccess' | 'recordFailure'>;

/**
 * The targets of a reply, in the order they are tried: the model's deployments, then each
 * fallback's deployments.
 */
export function planRoute(
  model: ModelInfo,
  catalog: ReadonlyMap<string, ModelInfo>,
  providers: ReadonlyMap<string, ProviderHandle>,
  defaultTimeoutMs: number,
): RouteTarget[] {
  const models = [model, ...model.fallbacks.flatMap((id) => catalog.get(id) ?? [])];
  return models.flatMap((m) =>
    m.deployments.flatMap((deployment): RouteTarget[] => {
      const provider = providers.get(deployment.provider);
      if (!provider) return [];
      return [
        {
          model: m,
          deployment,
          provider,
          key: deploymentKey(provider.id, deployment.model),
          prefill: deployment.prefill ?? provider.prefill,
          timeoutMs: m.timeoutMs ?? provider.timeoutMs ?? defaultTimeoutMs,
        },
      ];
    }),
  );
}

/** Failures worth another attempt at the same deployment, before any text reached a client. */
const RETRIED_IN_PLACE: ReadonlySet<FailureKind> = new Set(['rate_limited', 'server_error', 'connection']);
/** Failures that say the deployment is unwell (not the request): they count towards opening its circuit. */
const DEPLOYMENT_FAILURES: ReadonlySet<FailureKind> = new Set([
  'rate_limited',
  'server_error',
  'connection',
  'timeout',
  'cut',
  'credentials',
  'not_found',
]);

export const retriedInPlace = (failure: ProviderFailure) => RETRIED_IN_PLACE.has(failure.kind);
export const countsAgainstDeployment = (failure: ProviderFailure) => DEPLOYMENT_FAILURES.has(failure.kind);
/** Failures that end the reply at once: the request itself is refused, and no other target would do better. */
export const endsReply = (failure: ProviderFailure) => failure.kind === 'content_filter' || failure.kind === 'bad_request';

const BASE_BACKOFF_MS = 500;

/**
 * How long to wait before the next attempt at the same deployment: the provider's Retry-After
 * when it gave one (undefined when that is longer than `maxWaitMs`: better to move on), else
 * exponential backoff from 0.5 s with full jitter over its upper half, so that callers retrying
 * together spread out.
 */
export function retryDelayMs(failure: ProviderFailure, attempt: number, maxWaitMs: number, random = Math.random): number | undefined {
  if (failure.retryAfterSeconds !== undefined) {
    const asked = Math.max(0, failure.retryAfterSeconds * 1000);
    return asked <= maxWaitMs ? asked : undefined;
  }
  const ceiling = Math.min(BASE_BACKOFF_MS * 2 ** (attempt - 1), maxWaitMs);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
