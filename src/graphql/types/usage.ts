import { userUsage, type UsageDay, type UsageTotals } from '../../metering/queries.js';
import { builder } from '../builder.js';
import { isSelfOrAdmin } from '../ownership.js';
import { readGuarded } from '../read-scopes.js';
import { UserRef } from './user.js';

type BuilderTypes = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer Types> ? Types : never;

/** Token counts as the provider reports them: cache reads and writes are parts of the prompt, reasoning tokens part of the completion. */
function tokenFields(t: PothosSchemaTypes.ObjectFieldBuilder<BuilderTypes, UsageTotals>) {
  return {
    promptTokens: t.expose('promptTokens', { type: 'SafeInt' }),
    cachedTokens: t.expose('cachedTokens', { type: 'SafeInt', description: 'Prompt tokens served from the provider cache, priced at the cached rate.' }),
    cacheWriteTokens: t.expose('cacheWriteTokens', {
      type: 'SafeInt',
      description: "Prompt tokens written to the provider's cache, priced at the cache-write rate.",
    }),
    completionTokens: t.expose('completionTokens', { type: 'SafeInt' }),
    reasoningTokens: t.expose('reasoningTokens', { type: 'SafeInt', description: 'Completion tokens spent reasoning.' }),
    totalTokens: t.expose('totalTokens', { type: 'SafeInt' }),
  };
}

export const UsageTotalsRef = builder.objectRef<UsageTotals>('UsageTotals').implement({
  ...readGuarded,
  fields: (t) => ({
    ...tokenFields(t),
    costMicros: t.expose('costMicros', { type: 'SafeInt', description: 'Cost in micro-dollars (1e-6 USD).' }),
    requests: t.exposeInt('requests'),
  }),
});

const UsageDayRef = builder.objectRef<UsageDay>('UsageDay').implement({
  ...readGuarded,
  fields: (t) => ({
    date: t.expose('date', { type: 'Date' }),
    ...tokenFields(t),
    costMicros: t.expose('costMicros', { type: 'SafeInt' }),
    requests: t.exposeInt('requests'),
  }),
});

const UsageRef = builder.objectRef<{ totals: UsageTotals; daily: UsageDay[] }>('Usage').implement({
  ...readGuarded,
  fields: (t) => ({
    totals: t.field({ type: UsageTotalsRef, resolve: (usage) => usage.totals }),
    daily: t.field({ type: [UsageDayRef], resolve: (usage) => usage.daily }),
  }),
});

builder.prismaObjectField(UserRef, 'usage', (t) =>
  t.field({
    type: UsageRef,
    nullable: true,
    description: 'Usage between two UTC days, inclusive (default: this month so far), with daily buckets. Null for an API key without READ.',
    args: { from: t.arg({ type: 'Date' }), to: t.arg({ type: 'Date' }) },
    authScopes: (user, _args, ctx) => isSelfOrAdmin(user.id, ctx),
    resolve: (user, args, ctx) => userUsage(ctx.services.prisma, user.id, args),
  }),
);
