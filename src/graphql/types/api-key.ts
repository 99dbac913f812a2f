import { createApiKey, revokeApiKey } from '../../auth/api-keys.js';
import { assertNotApiKey } from '../../auth/viewer.js';
import type { ApiKey } from '../../generated/prisma/client.js';
import { quotaPeriodOf } from '../../metering/quota.js';
import { builder } from '../builder.js';
import { MAX_PAGE_SIZE } from '../limits/field-cost.js';
import { ownedByViewer } from '../ownership.js';
import { MUTATION_RESULT, READ_ACCOUNT, readAccountGuarded } from '../read-scopes.js';
import { requireViewer } from '../context.js';
import { UserRef } from './user.js';

export const ApiKeyScopeEnum = builder.enumType('ApiKeyScope', { values: ['CHAT', 'READ', 'ACCOUNT'] as const });

export const ApiKeyRef = builder.prismaNode('ApiKey', {
  ...ownedByViewer(READ_ACCOUNT),
  fields: (t) => ({
    name: t.exposeString('name'),
    prefix: t.exposeString('prefix', { description: 'The first characters of the secret, to tell keys apart.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    scopes: t.expose('scopes', { type: [ApiKeyScopeEnum] }),
    monthlyBudgetMicros: t.expose('monthlyBudgetMicros', {
      type: 'SafeInt',
      nullable: true,
      description: 'Most the key may spend per UTC month, in micro-dollars; null for no limit of its own.',
    }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    spentThisMonthMicros: t.field({
      type: 'SafeInt',
      description: 'What calls made with the key cost this UTC month, in micro-dollars.',
      select: () => ({ spends: { where: { period: quotaPeriodOf() }, select: { spentMicros: true } } }),
      resolve: (key) => key.spends[0]?.spentMicros ?? 0,
    }),
  }),
});

builder.prismaObjectField(UserRef, 'apiKeys', (t) =>
  t.relatedConnection(
    'apiKeys',
    {
      cursor: 'id',
      description:
        'API keys of this user, newest first. Only the user themself can list them; null for an API key without READ and ACCOUNT.',
      nullable: true,
      authScopes: (user, _args, ctx) => user.id === ctx.viewer?.id,
      maxSize: MAX_PAGE_SIZE,
      totalCount: true,
      query: () => ({ orderBy: { id: 'desc' } }),
    },
    readAccountGuarded,
  ),
);

const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    scopes: t.field({
      type: [ApiKeyScopeEnum],
      description: 'CHAT: send and stop replies and change conversations; READ: queries and subscriptions; ACCOUNT: change the profile. Default [CHAT, READ].',
    }),
    monthlyBudgetMicros: t.field({ type: 'SafeInt', description: 'Most the key may spend per UTC month; calls over it get QUOTA_EXCEEDED with extensions.scope "apiKey".' }),
    expiresAt: t.field({ type: 'DateTime', description: 'The key stops working at this time.' }),
  }),
});

const CreateApiKeyPayload = builder.objectRef<{ apiKey: ApiKey; secret: string }>('CreateApiKeyPayload').implement({
  grantScopes: () => [MUTATION_RESULT],
  fields: (t) => ({
    apiKey: t.field({ type: ApiKeyRef, resolve: (payload) => payload.apiKey }),
    secret: t.exposeString('secret', { description: 'Shown only once; store it now.' }),
  }),
});

builder.mutationFields((t) => ({
  createApiKey: t.field({
    type: CreateApiKeyPayload,
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: CreateApiKeyInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      const viewer = requireViewer(ctx);
      assertNotApiKey(viewer, 'create API keys');
      return createApiKey(ctx.services.prisma, viewer.id, input);
    },
  }),
  revokeApiKey: t.field({
    type: ApiKeyRef,
    authScopes: { authenticated: true },
    args: { id: t.arg.globalID({ required: true, for: ApiKeyRef }) },
    resolve: async (_root, { id }, ctx) => {
      const viewer = requireViewer(ctx);
      assertNotApiKey(viewer, 'revoke API keys');
      return revokeApiKey(ctx.services, viewer.id, id.id);
    },
  }),
}));
