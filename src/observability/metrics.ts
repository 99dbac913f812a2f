import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CircuitState } from '../providers/circuit-breaker.js';
import type { ReadProviderHealth } from '../providers/provider-health.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const GENERATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600];
const FIRST_TOKEN_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];
const CIRCUIT_STATE_VALUES: Record<CircuitState, number> = { HEALTHY: 0, DEGRADED: 1, OPEN: 2 };

/**
 * The app's Prometheus metrics, on a registry of its own (not prom-client's global one), so
 * that several apps in one process (tests) each count their own.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    graphql: {
      operations: new Counter({
        name: 'switchboard_graphql_operations_total',
        help: 'GraphQL operations executed, over HTTP, SSE and graphql-ws',
        labelNames: ['operation_name', 'operation_type'] as const,
        registers,
      }),
      duration: new Histogram({
        name: 'switchboard_graphql_operation_duration_seconds',
        help: 'Execution time of queries and mutations (a subscription lasts as long as its client stays)',
        labelNames: ['operation_name', 'operation_type'] as const,
        buckets: LATENCY_BUCKETS,
        registers,
      }),
      errors: new Counter({
        name: 'switchboard_graphql_errors_total',
        help: 'Errors sent to clients in GraphQL results, by extensions.code',
        labelNames: ['code'] as const,
        registers,
      }),
    },
    /** Requests refused by the rate limiter, by the field that was limited. */
    rateLimited: new Counter({
      name: 'switchboard_rate_limited_total',
      help: 'Calls refused by the rate limiter, by rule',
      labelNames: ['rule'] as const,
      registers,
    }),
    /**
     * Open graphql-ws connections and operations, read at each scrape from the server that
     * holds them: counts kept beside its own bookkeeping could drift from it.
     */
    trackWebSockets(read: { connections(): number; subscriptions(): number }) {
      new Gauge({
        name: 'switchboard_ws_connections',
        help: 'Open graphql-ws connections',
        registers,
        collect() {
          this.set(read.connections());
        },
      });
      new Gauge({
        name: 'switchboard_ws_subscriptions',
        help: 'graphql-ws operations in flight (subscriptions, and queries while they run)',
        registers,
        collect() {
          this.set(read.subscriptions());
        },
      });
    },
    /**
     * The circuit of each configured deployment, read from the breaker (shared through Redis when
     * there is one) at each scrape.
     */
    trackCircuits(read: ReadProviderHealth) {
      new Gauge({
        name: 'switchboard_circuit_state',
        help: "Circuit breaker of each configured deployment: 0 healthy, 1 degraded, 2 open (model: the provider's name)",
        labelNames: ['provider', 'model'] as const,
        registers,
        async collect() {
          for (const provider of await read()) {
            for (const d of provider.deployments) this.set({ provider: provider.id, model: d.upstreamModel }, CIRCUIT_STATE_VALUES[d.state]);
          }
        },
      });
    },
    /** Every call to a provider, whichever reply it served. Labels come from the configuration: their number is bounded. */
    upstream: {
      attempts: new Counter({
        name: 'switchboard_upstream_attempts_total',
        help: "Calls to model providers, by provider, upstream model (the provider's name) and outcome (OK ERROR TIMEOUT CUT REFUSED)",
        labelNames: ['provider', 'model', 'outcome'] as const,
        registers,
      }),
      failovers: new Counter({
        name: 'switchboard_upstream_failovers_total',
        help: 'Replies moved to another deployment or fallback, by the kind of failure that moved them and whether text had already reached clients',
        labelNames: ['from_provider', 'to_provider', 'reason', 'mid_stream'] as const,
        registers,
      }),
      firstToken: new Histogram({
        name: 'switchboard_upstream_first_token_seconds',
        help: 'From the start of a call to a provider to its first token',
        labelNames: ['provider'] as const,
        buckets: FIRST_TOKEN_BUCKETS,
        registers,
      }),
      attemptDuration: new Histogram({
        name: 'switchboard_upstream_attempt_duration_seconds',
        help: 'How long a call to a provider lasted, by how it ended',
        labelNames: ['provider', 'outcome'] as const,
        buckets: GENERATION_BUCKETS,
        registers,
      }),
    },
    generation: {
      running: new Gauge({ name: 'switchboard_generations_running', help: 'Generations running in this instance', registers }),
      timeToFirstToken: new Histogram({
        name: 'switchboard_generation_time_to_first_token_seconds',
        help: 'From the start of a generation to its first token, retries included',
        labelNames: ['model'] as const,
        buckets: GENERATION_BUCKETS,
        registers,
      }),
      duration: new Histogram({
        name: 'switchboard_generation_duration_seconds',
        help: 'From the start of a generation until its final state is recorded',
        labelNames: ['model', 'status'] as const,
        buckets: GENERATION_BUCKETS,
        registers,
      }),
      upstreamErrors: new Counter({
        name: 'switchboard_upstream_errors_total',
        help: 'Failed calls to the model provider, by HTTP status ("none": timeout or broken connection)',
        labelNames: ['status'] as const,
        registers,
      }),
      unbilledAttemptTokens: new Counter({
        name: 'switchboard_unbilled_attempt_prompt_tokens_total',
        help: 'Estimated prompt tokens of upstream attempts that timed out before any output: the provider may bill them, no user is charged',
        labelNames: ['model'] as const,
        registers,
      }),
    },
    usage: {
      tokens: new Counter({
        name: 'switchboard_tokens_total',
        help: 'Tokens recorded, by model and kind (prompt and completion; cached, cache_write and reasoning are parts of them)',
        labelNames: ['model', 'kind'] as const,
        registers,
      }),
      costMicros: new Counter({
        name: 'switchboard_cost_micros_total',
        help: 'Cost recorded in micro-dollars, by model',
        labelNames: ['model'] as const,
        registers,
      }),
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
export type GenerationMetrics = Metrics['generation'];
export type UsageMetrics = Metrics['usage'];
export type UpstreamMetrics = Metrics['upstream'];
