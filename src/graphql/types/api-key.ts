import { createApiKey, revokeApiKey } from '../../auth/api-keys.js';
import { assertNotApiKey } from '../../auth/viewer.js';
import type { ApiKey } from '../../generated/prisma/client.js';
import { builder } from '../builder.js';
import { MAX_PAGE_SIZE } from '../limits/field-cost.js';
import { ownedByViewer } from '../ownership.js';
import { requireViewer } from '../context.js';
import { UserRef } from './user.js';

export const ApiKeyRef = builder.prismaNode('ApiKey', {
  ...ownedByViewer,
  fields: (t) => ({
    name: t.exposeString('name'),
    prefix: t.exposeString('prefix', { description: 'The first characters of the secret, to tell keys apart.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
  }),
});

builder.prismaObjectField(UserRef, 'apiKeys', (t) =>
  t.relatedConnection('apiKeys', {
    cursor: 'id',
    description: 'API keys of this user, newest first. Only the user themself can list them.',
    authScopes: (user, _args, ctx) => user.id === ctx.viewer?.id,
    maxSize: MAX_PAGE_SIZE,
    totalCount: true,
    query: () => ({ orderBy: { id: 'desc' } }),
  }),
);

const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  fields: (t) => ({ name: t.string({ required: true }) }),
});

const CreateApiKeyPayload = builder.objectRef<{ apiKey: ApiKey; secret: string }>('CreateApiKeyPayload').implement({
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
      return createApiKey(ctx.services.prisma, viewer.id, input.name);
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
