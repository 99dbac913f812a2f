import type { ModelInfo } from '../model-catalog.js';
import type { CircuitBreaker, CircuitState } from './circuit-breaker.js';
import type { ProviderKind } from './provider-settings.js';
import { deploymentKey } from './router.js';

/** What operators may know of a configured provider: never its key or base URL. */
export interface ProviderIdentity {
  id: string;
  kind: ProviderKind;
}

/** One catalog model's deployment on a provider, as its circuit stands. */
export interface DeploymentHealth {
  /** The circuit's key; catalog models deployed on the same upstream model share it. */
  key: string;
  provider: string;
  /** The catalog model. */
  model: string;
  /** The provider's name for the model. */
  upstreamModel: string;
  state: CircuitState;
  consecutiveFailures: number;
  /** While the circuit is open: when a caller may next probe it. */
  nextProbeAt: Date | null;
}

export interface ProviderHealth extends ProviderIdentity {
  /** The worst of its deployments' circuits; OPEN only when every one of them is open. */
  state: CircuitState;
  /** In catalog order. */
  deployments: DeploymentHealth[];
}

/** The circuits of every configured provider's deployments, as they stand now. */
export type ReadProviderHealth = () => Promise<ProviderHealth[]>;

/**
 * Reads the circuit of each deployment the catalog configures, one key at a time rather than by
 * scanning Redis: the configured keys are few, pipelined, and each read bounded by the breaker.
 */
export function createProviderHealth(deps: {
  circuit: Pick<CircuitBreaker, 'snapshot'>;
  providers: ProviderIdentity[];
  models: ModelInfo[];
}): ReadProviderHealth {
  const known = new Set(deps.providers.map((p) => p.id));
  const deployments = deps.models.flatMap((m) =>
    m.deployments
      .filter((d) => known.has(d.provider))
      .map((d) => ({ key: deploymentKey(d.provider, d.model), provider: d.provider, model: m.id, upstreamModel: d.model })),
  );
  const keys = [...new Set(deployments.map((d) => d.key))];

  return async () => {
    const snapshots = new Map((await Promise.all(keys.map((key) => deps.circuit.snapshot(key)))).map((s) => [s.key, s]));
    const health = deployments.map((d): DeploymentHealth => {
      const snapshot = snapshots.get(d.key);
      return {
        ...d,
        state: snapshot?.state ?? 'HEALTHY',
        consecutiveFailures: snapshot?.consecutiveFailures ?? 0,
        nextProbeAt: snapshot?.nextProbeAt === undefined ? null : new Date(snapshot.nextProbeAt),
      };
    });
    return deps.providers.map((p) => {
      const own = health.filter((d) => d.provider === p.id);
      return { id: p.id, kind: p.kind, state: worstState(own), deployments: own };
    });
  };
}

/** A provider is open only when it can serve nothing; any circuit not healthy degrades it. */
function worstState(deployments: DeploymentHealth[]): CircuitState {
  const states = deployments.map((d) => d.state);
  if (states.length > 0 && states.every((s) => s === 'OPEN')) return 'OPEN';
  return states.some((s) => s !== 'HEALTHY') ? 'DEGRADED' : 'HEALTHY';
}
