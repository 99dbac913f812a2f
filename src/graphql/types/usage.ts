import { userUsage, type UsageDay, type UsageTotals } from '../../usage/queries.js';
import { builder } from '../builder.js';
import { UserRef } from './user.js';

export const UsageTotalsRef = builder.objectRef<UsageTotals>('UsageTotals').implement({
  fields: (t) => ({
    promptTokens: t.expose('promptTokens', { type: 'SafeInt' }),
    completionTokens: t.expose('completionTokens', { type: 'SafeInt' }),
    totalTokens: t.expose('totalTokens', { type: 'SafeInt' }),
    costMicros: t.expose('costMicros', { type: 'SafeInt', description: 'Cost in micro-dollars (1e-6 USD).' }),
    requests: t.exposeInt('requests'),
  }),
});

const UsageDayRef = builder.objectRef<UsageDay>('UsageDay').implement({
  fields: (t) => ({
    date: t.expose('date', { type: 'Date' }),
    promptTokens: t.expose('promptTokens', { type: 'SafeInt' }),
    completionTokens: t.expose('completionTokens', { type: 'SafeInt' }),
    totalTokens: t.expose('totalTokens', { type: 'SafeInt' }),
    costMicros: t.expose('costMicros', { type: 'SafeInt' }),
    requests: t.exposeInt('requests'),
  }),
});

const UsageRef = builder.objectRef<{ totals: UsageTotals; daily: UsageDay[] }>('Usage').implement({
  fields: (t) => ({
    totals: t.field({ type: UsageTotalsRef, resolve: (usage) => usage.totals }),
    daily: t.field({ type: [UsageDayRef], resolve: (usage) => usage.daily }),
  }),
});

builder.prismaObjectField(UserRef, 'usage', (t) =>
  t.field({
    type: UsageRef,
    description: 'Usage between two UTC days, inclusive (default: this month so far), with daily buckets.',
    args: { from: t.arg({ type: 'Date' }), to: t.arg({ type: 'Date' }) },
    authScopes: (user, _args, ctx) => user.id === ctx.viewer?.id || ctx.viewer?.role === 'ADMIN',
    resolve: (user, args, ctx) => userUsage(ctx.services.prisma, user.id, args),
  }),
);
