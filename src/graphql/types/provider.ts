import type { ProviderFigures, ProviderStatus } from '../../admin/provider-status.js';
import type { DeploymentHealth } from '../../providers/provider-health.js';
import { builder } from '../builder.js';

/** Operating data: an admin's, read with a session or a key with READ. */
const adminGuarded = { runScopesOnType: true, authScopes: { $all: { admin: true, read: true } } } as const;

const ProviderKindEnum = builder.enumType('ProviderKind', {
  description: 'The API a provider speaks.',
  values: {
    OPENAI: { value: 'openai' },
    OPENAI_COMPATIBLE: { value: 'openai-compatible', description: 'A server speaking OpenAI Chat Completions (vLLM, Ollama, OpenRouter…).' },
    ANTHROPIC: { value: 'anthropic', description: "Anthropic's Messages API." },
  } as const,
});

const CircuitStateEnum = builder.enumType('CircuitState', {
  description:
    'HEALTHY: no recent failure. DEGRADED: failing lately, or open with a probe in flight. OPEN: skipped until its next probe.',
  values: ['HEALTHY', 'DEGRADED', 'OPEN'] as const,
});

const ProviderDeploymentRef = builder.objectRef<DeploymentHealth>('ProviderDeployment').implement({
  ...adminGuarded,
  description: "A catalog model's deployment on a provider, with its circuit breaker.",
  fields: (t) => ({
    model: t.exposeString('model', { description: 'The catalog model.' }),
    upstreamModel: t.exposeString('upstreamModel', { description: "The provider's name for the model (catalog models may share one, and its circuit)." }),
    state: t.expose('state', { type: CircuitStateEnum }),
    consecutiveFailures: t.exposeInt('consecutiveFailures'),
    nextProbeAt: t.expose('nextProbeAt', { type: 'DateTime', nullable: true, description: 'While open: when a call may next probe it.' }),
  }),
});

const ProviderFiguresRef = builder.objectRef<ProviderFigures>('ProviderFigures').implement({
  ...adminGuarded,
  description: "A provider's upstream calls since a time, on every instance, as recorded when each reply ended.",
  fields: (t) => ({
    since: t.expose('since', { type: 'DateTime' }),
    attempts: t.exposeInt('attempts'),
    errors: t.exposeInt('errors', { description: 'Attempts that did not end OK, timeouts and cuts included.' }),
    timeouts: t.exposeInt('timeouts'),
    cuts: t.exposeInt('cuts'),
    medianFirstTokenMs: t.exposeInt('medianFirstTokenMs', { nullable: true }),
    p95FirstTokenMs: t.exposeInt('p95FirstTokenMs', { nullable: true }),
    billedCostMicros: t.expose('billedCostMicros', {
      type: 'SafeInt',
      description: 'What the provider charges for the attempts whose text users were billed for, in micro-dollars.',
    }),
    unbilledCostMicros: t.expose('unbilledCostMicros', {
      type: 'SafeInt',
      description: 'What the provider charges for the attempts no user was billed for (failed, cut, replaced), in micro-dollars.',
    }),
  }),
});

const ProviderRef = builder.objectRef<ProviderStatus>('Provider').implement({
  ...adminGuarded,
  description: 'A configured model provider: its circuits and recent figures (never its key or address).',
  fields: (t) => ({
    id: t.exposeString('id', { description: 'The name it is configured under, as in Message.provider and MessageAttempt.provider.' }),
    kind: t.expose('kind', { type: ProviderKindEnum }),
    state: t.expose('state', {
      type: CircuitStateEnum,
      description: "The worst of its deployments' circuits; OPEN only when all of them are open.",
    }),
    deployments: t.expose('deployments', { type: [ProviderDeploymentRef], description: 'In catalog order.' }),
    recent: t.expose('recent', { type: ProviderFiguresRef, description: 'Its calls over the last 15 minutes.' }),
  }),
});

builder.queryField('providers', (t) =>
  t.field({
    type: [ProviderRef],
    description: 'The configured model providers, with their circuits and the last 15 minutes of calls. Admins only.',
    authScopes: { admin: true },
    resolve: (_root, _args, ctx) => ctx.services.admin.providers(),
  }),
);
