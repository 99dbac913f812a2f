import { userSearchFilter } from '../../admin/user-search.js';
import type { UsageReportRow } from '../../admin/usage-report.js';
import { assertNotApiKey } from '../../auth/viewer.js';
import { builder } from '../builder.js';
import { requireViewer, type GraphQLContext } from '../context.js';
import { encodeGlobalId, NO_ROW_ID } from '../../global-id.js';
import { MAX_PAGE_SIZE } from '../limits/field-cost.js';
import { readGuarded } from '../read-scopes.js';
import { PlanEnum, RoleEnum, UserRef } from './user.js';

builder.prismaNode('AuditEntry', {
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id: ctx.viewer?.role === 'ADMIN' ? id : NO_ROW_ID }),
  runScopesOnType: true,
  authScopes: { $all: { admin: true, read: true } },
  description: 'Something an admin did (or how an account became an admin). Entries are never changed or removed.',
  fields: (t) => ({
    actor: t.relation('actor', { description: 'Who did it; for PROMOTE_ADMIN, the promoted user.' }),
    action: t.exposeString('action', {
      description: 'ADJUST_CREDITS, SET_ROLE, SET_PLAN, DEACTIVATE_USER, REACTIVATE_USER or PROMOTE_ADMIN.',
    }),
    target: t.relation('target', { nullable: true }),
    reason: t.exposeString('reason', { nullable: true }),
    details: t.field({
      type: 'JSON',
      nullable: true,
      description: 'What changed, e.g. { before, after } or { via }; ids in it are global ids.',
      resolve: (entry) => withGlobalIds(entry.details),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const UsageGroupByEnum = builder.enumType('UsageGroupBy', { values: ['USER', 'MODEL', 'DAY', 'PROVIDER'] as const });

const UsageReportRowRef = builder.objectRef<UsageReportRow>('UsageReportRow').implement({
  ...readGuarded,
  description: 'Usage of the whole service for one user, model, day or provider.',
  fields: (t) => ({
    key: t.string({
      description: "The group: the user's id, the model id, the day (YYYY-MM-DD), or the provider's id.",
      resolve: (row) =>
        row.user ? encodeGlobalId('User', row.user.id) : (row.model ?? row.provider ?? row.day!.toISOString().slice(0, 10)),
    }),
    user: t.field({ type: UserRef, nullable: true, resolve: (row) => row.user }),
    model: t.exposeString('model', { nullable: true }),
    day: t.expose('day', { type: 'Date', nullable: true }),
    provider: t.exposeString('provider', { nullable: true, description: 'PROVIDER: the id of the provider that served the attempts.' }),
    promptTokens: t.expose('promptTokens', { type: 'SafeInt' }),
    cachedTokens: t.expose('cachedTokens', { type: 'SafeInt' }),
    cacheWriteTokens: t.expose('cacheWriteTokens', { type: 'SafeInt' }),
    completionTokens: t.expose('completionTokens', { type: 'SafeInt' }),
    reasoningTokens: t.expose('reasoningTokens', { type: 'SafeInt' }),
    totalTokens: t.expose('totalTokens', { type: 'SafeInt' }),
    costMicros: t.expose('costMicros', { type: 'SafeInt', description: 'Cost in micro-dollars (1e-6 USD).' }),
    requests: t.exposeInt('requests', { description: 'PROVIDER: every attempt made there, billed or not.' }),
    unbilledCostMicros: t.expose('unbilledCostMicros', {
      type: 'SafeInt',
      nullable: true,
      description:
        'PROVIDER only (null otherwise): what the provider charges for the attempts no user was billed for, in micro-dollars; ' +
        'tokens and costMicros count the billed attempts.',
    }),
  }),
});

builder.queryFields((t) => ({
  users: t.prismaConnection(
    {
      type: 'User',
      cursor: 'id',
      description: 'Every account, newest first; `search` matches the e-mail or the name (any case). Admins only.',
      authScopes: { admin: true },
      maxSize: MAX_PAGE_SIZE,
      args: { search: t.arg.string() },
      totalCount: (_root, args, ctx) => ctx.services.prisma.user.count({ where: userSearchFilter(args.search) }),
      resolve: (query, _root, args, ctx) =>
        ctx.services.prisma.user.findMany({ ...query, where: userSearchFilter(args.search), orderBy: { id: 'desc' } }),
    },
    { name: 'UserConnection' },
    { name: 'UserEdge' },
  ),
  usageReport: t.field({
    type: [UsageReportRowRef],
    description:
      'Usage of the whole service between two UTC days (inclusive, at most 366 days): by USER (largest cost first, ' +
      'at most 1000), by MODEL (largest cost first), by DAY, or by PROVIDER (from every upstream attempt, largest cost first). ' +
      'Admins only.',
    authScopes: { admin: true },
    args: {
      from: t.arg({ type: 'Date', required: true }),
      to: t.arg({ type: 'Date', required: true }),
      groupBy: t.arg({ type: UsageGroupByEnum, required: true }),
    },
    resolve: (_root, args, ctx) => ctx.services.admin.usageReport(args),
  }),
  auditLog: t.prismaConnection(
    {
      type: 'AuditEntry',
      cursor: 'id',
      description: 'What admins did, newest first. Admins only.',
      authScopes: { admin: true },
      maxSize: MAX_PAGE_SIZE,
      totalCount: (_root, _args, ctx) => ctx.services.prisma.auditEntry.count(),
      resolve: (query, _root, _args, ctx) => ctx.services.prisma.auditEntry.findMany({ ...query, orderBy: { id: 'desc' } }),
    },
    { name: 'AuditEntryConnection' },
    { name: 'AuditEntryEdge' },
  ),
}));

const AdjustCreditsInput = builder.inputType('AdjustCreditsInput', {
  fields: (t) => ({
    userId: t.globalID({ required: true, for: UserRef }),
    amountMicros: t.field({
      type: 'SafeInt',
      required: true,
      description: 'Signed micro-dollars: positive adds credits, negative takes them away (never below what is available).',
    }),
    reason: t.string({ required: true, description: 'Why, in 1 to 500 characters; shown in the ledger and the audit log.' }),
  }),
});

const SetUserRoleInput = builder.inputType('SetUserRoleInput', {
  fields: (t) => ({
    userId: t.globalID({ required: true, for: UserRef }),
    role: t.field({ type: RoleEnum, required: true }),
  }),
});

const SetUserPlanInput = builder.inputType('SetUserPlanInput', {
  fields: (t) => ({
    userId: t.globalID({ required: true, for: UserRef }),
    plan: t.field({ type: PlanEnum, required: true }),
  }),
});

/** The acting admin. API keys call the API; they do not administer it. */
function adminActor(ctx: GraphQLContext): string {
  const viewer = requireViewer(ctx);
  assertNotApiKey(viewer, 'perform admin actions');
  return viewer.id;
}

builder.mutationFields((t) => ({
  adjustCredits: t.prismaField({
    type: 'CreditLedgerEntry',
    description: 'Adds or takes away credits, with a reason: an ADJUSTMENT in the user\'s ledger. Admins only.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: AdjustCreditsInput, required: true }) },
    resolve: (_query, _root, { input }, ctx) =>
      ctx.services.admin.adjustCredits(adminActor(ctx), { ...input, userId: input.userId.id }),
  }),
  setUserRole: t.prismaField({
    type: 'User',
    description: 'Changes a role. Admins cannot remove their own ADMIN role. Admins only.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: SetUserRoleInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const user = await ctx.services.admin.setUserRole(adminActor(ctx), input.userId.id, input.role);
      return ctx.services.prisma.user.findUniqueOrThrow({ ...query, where: { id: user.id } });
    },
  }),
  setUserPlan: t.prismaField({
    type: 'User',
    description: 'Changes a plan by hand (a later Stripe subscription event sets it again). Admins only.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: SetUserPlanInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const user = await ctx.services.admin.setUserPlan(adminActor(ctx), input.userId.id, input.plan);
      return ctx.services.prisma.user.findUniqueOrThrow({ ...query, where: { id: user.id } });
    },
  }),
  deactivateUser: t.prismaField({
    type: 'User',
    description:
      'Deactivates an account: its tokens and API keys stop working, its connections close and its running replies ' +
      'are stopped and billed. Admins cannot deactivate themselves. Admins only.',
    authScopes: { admin: true },
    args: { userId: t.arg.globalID({ required: true, for: UserRef }) },
    resolve: async (query, _root, args, ctx) => {
      const user = await ctx.services.admin.deactivateUser(adminActor(ctx), args.userId.id);
      return ctx.services.prisma.user.findUniqueOrThrow({ ...query, where: { id: user.id } });
    },
  }),
  reactivateUser: t.prismaField({
    type: 'User',
    description: 'Lets a deactivated account sign in again (its earlier sessions stay revoked). Admins only.',
    authScopes: { admin: true },
    args: { userId: t.arg.globalID({ required: true, for: UserRef }) },
    resolve: async (query, _root, args, ctx) => {
      const user = await ctx.services.admin.reactivateUser(adminActor(ctx), args.userId.id);
      return ctx.services.prisma.user.findUniqueOrThrow({ ...query, where: { id: user.id } });
    },
  }),
}));

/** Audit details store database ids (`ledgerEntryId`); clients see them as the global ids node(id:) takes. */
function withGlobalIds(details: unknown): unknown {
  if (typeof details !== 'object' || details === null || Array.isArray(details)) return details;
  const { ledgerEntryId, ...rest } = details as Record<string, unknown>;
  return typeof ledgerEntryId === 'string' ? { ...rest, ledgerEntryId: encodeGlobalId('CreditLedgerEntry', ledgerEntryId) } : details;
}
