import { quotaPeriodOf } from '../../metering/quota.js';
import { builder } from '../builder.js';
import { isSelfOrAdmin } from '../ownership.js';
import { NO_ROW_ID } from '../../global-id.js';
import { MAX_PAGE_SIZE } from '../limits/field-cost.js';
import { READ_ACCOUNT, readAccountGuarded, readGuarded } from '../read-scopes.js';
import { UserRef } from './user.js';


const CreditEntryKind = builder.enumType('CreditEntryKind', {
  values: ['GRANT', 'PURCHASE', 'USAGE', 'REFUND', 'DISPUTE', 'ADJUSTMENT'] as const,
});

builder.prismaNode('CreditLedgerEntry', {
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) =>
    ctx.viewer?.role === 'ADMIN' ? { id } : { id, userId: ctx.viewer?.id ?? NO_ROW_ID },
  runScopesOnType: true,
  authScopes: (entry, ctx) => isSelfOrAdmin(entry.userId, ctx) && READ_ACCOUNT,
  description: 'One movement of credits. Entries are never changed or removed.',
  fields: (t) => ({
    kind: t.expose('kind', { type: CreditEntryKind }),
    amountMicros: t.expose('amountMicros', {
      type: 'SafeInt',
      description: 'Signed micro-dollars: GRANT, PURCHASE and positive ADJUSTMENT add; USAGE, REFUND, DISPUTE and negative ADJUSTMENT take away.',
    }),
    balanceAfterMicros: t.expose('balanceAfterMicros', { type: 'SafeInt', description: 'The running balance after this entry.' }),
    reason: t.exposeString('reason'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const Credits = builder.prismaObject('User', {
  variant: 'Credits',
  ...readGuarded,
  description: 'Prepaid credits in micro-dollars (1e-6 USD).',
  fields: (t) => ({
    balanceMicros: t.expose('creditBalanceMicros', { type: 'SafeInt' }),
    heldMicros: t.expose('creditHeldMicros', {
      type: 'SafeInt',
      description: 'Held for replies still being generated: their worst case until they finish.',
    }),
    availableMicros: t.field({
      type: 'SafeInt',
      description: 'What new calls may spend: the balance less what is held.',
      select: { creditBalanceMicros: true, creditHeldMicros: true },
      resolve: (user) => user.creditBalanceMicros - user.creditHeldMicros,
    }),
    ledger: t.relatedConnection(
      'creditEntries',
      {
        cursor: 'id',
        description: 'Newest first. Null for an API key without READ and ACCOUNT.',
        nullable: true,
        maxSize: MAX_PAGE_SIZE,
        totalCount: true,
        query: () => ({ orderBy: { id: 'desc' } }),
      },
      readAccountGuarded,
    ),
  }),
});

interface QuotaShape {
  period: Date;
  limitTokens: number;
  usedTokens: number;
  reservedTokens: number;
}

const Quota = builder.objectRef<QuotaShape>('Quota').implement({
  ...readGuarded,
  description: "This month's token quota (UTC months).",
  fields: (t) => ({
    period: t.expose('period', { type: 'Date', description: 'The first day of the month.' }),
    limitTokens: t.expose('limitTokens', { type: 'SafeInt' }),
    usedTokens: t.expose('usedTokens', { type: 'SafeInt' }),
    reservedTokens: t.expose('reservedTokens', { type: 'SafeInt', description: 'Held by replies still being generated.' }),
    remainingTokens: t.field({
      type: 'SafeInt',
      resolve: (q) => Math.max(0, q.limitTokens - q.usedTokens - q.reservedTokens),
    }),
    resetsAt: t.field({
      type: 'DateTime',
      resolve: (q) => new Date(Date.UTC(q.period.getUTCFullYear(), q.period.getUTCMonth() + 1, 1)),
    }),
  }),
});

builder.prismaObjectFields(UserRef, (t) => ({
  credits: t.variant(Credits, {
    // Always there, but nullable: an API key without READ gets null here.
    isNull: () => false,
    description: 'Null for an API key without READ.',
    authScopes: (user, _args, ctx) => isSelfOrAdmin(user.id, ctx),
  }),
  quota: t.field({
    type: Quota,
    nullable: true,
    description: 'Null for an API key without READ.',
    select: { plan: true },
    authScopes: (user, _args, ctx) => isSelfOrAdmin(user.id, ctx),
    resolve: async (user, _args, ctx) => {
      const period = quotaPeriodOf();
      const row = await ctx.services.prisma.quotaPeriod.findUnique({ where: { userId_period: { userId: user.id, period } } });
      return {
        period,
        limitTokens: ctx.services.config.quotas[user.plan],
        usedTokens: Number(row?.usedTokens ?? 0n),
        reservedTokens: Number(row?.reservedTokens ?? 0n),
      };
    },
  }),
}));
