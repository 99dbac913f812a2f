import SchemaBuilder from '@pothos/core';
import ComplexityPlugin from '@pothos/plugin-complexity';
import PrismaPlugin from '@pothos/plugin-prisma';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { keyAllows } from '../auth/api-key-scopes.js';
import type PrismaTypes from '../generated/pothos-types.js';
import { getDatamodel } from '../generated/pothos-types.js';
import { decodeGlobalId } from '../global-id.js';
import type { GraphQLContext } from './context.js';
import type { Upload } from '../chat/attachments.js';
import { AppError, badInput } from '../errors.js';
import { fieldCost } from './limits/field-cost.js';
import { missingKeyScopes, MUTATION_RESULT } from './read-scopes.js';
import RootFieldGuardsPlugin from './root-field-guards.js';

export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  PrismaTypes: PrismaTypes;
  AuthScopes: { authenticated: boolean; admin: boolean; read: boolean; readAccount: boolean };
  DefaultFieldNullability: false;
  Scalars: {
    ID: { Input: string; Output: string };
    DateTime: { Input: Date; Output: Date };
    Date: { Input: Date; Output: Date };
    SafeInt: { Input: number; Output: number | bigint };
    JSON: { Input: unknown; Output: unknown };
    File: { Input: Upload; Output: never };
  };
}>({
  // Key scopes and rate limits run first: a refused call costs no authorization or database work.
  plugins: [RootFieldGuardsPlugin, ScopeAuthPlugin, PrismaPlugin, RelayPlugin, ComplexityPlugin],
  // Costs are checked before execution by the operation-limits plugin, with the request's variables.
  complexity: { fieldComplexity: (args, _ctx, field) => fieldCost(args, field) },
  defaultFieldNullability: false,
  scopeAuth: {
    // Check scopes when a subscription starts, not only when each event resolves.
    authorizeOnSubscribe: true,
    authScopes: (ctx) => ({
      authenticated: ctx.viewer !== null,
      admin: ctx.viewer?.role === 'ADMIN',
      read: keyAllows(ctx.viewer, ['READ']),
      readAccount: keyAllows(ctx.viewer, ['READ', 'ACCOUNT']),
    }),
    unauthorizedError: (_parent, ctx, _info, result) => {
      if (!ctx.viewer) return new AppError('UNAUTHENTICATED', 'Sign in to access this');
      const missing = ctx.viewer.via === 'api_key' ? missingKeyScopes(result.failure) : undefined;
      return missing
        ? new AppError('FORBIDDEN', `Reading this needs an API key with the ${missing.join(' and ')} scope${missing.length > 1 ? 's' : ''}`)
        : new AppError('FORBIDDEN', 'Not allowed to access this');
    },
  },
  prisma: {
    // The client differs per app instance (tests run several), so it is read from the context.
    client: (ctx) => ctx.services.prisma,
    dmmf: getDatamodel(),
    filterConnectionTotalCount: true,
    onUnusedQuery: null,
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    decodeGlobalID: (globalId) => decodeGlobalId(globalId),
    // Replaced below by a `nodes` field that bounds how many ids one request may ask for.
    nodesQueryOptions: false,
  },
});

builder.queryType({});
// What a mutation returns is its own result, readable by the key that was allowed to run it.
builder.mutationType({ grantScopes: () => [MUTATION_RESULT] });
builder.subscriptionType({});

export const MAX_NODES_PER_REQUEST = 100;

builder.queryField('nodes', (t) =>
  t.nodeList({
    description: `Objects by global id, in order; null where an id matches nothing you may see. At most ${MAX_NODES_PER_REQUEST} ids.`,
    args: { ids: t.arg.idList({ required: true }) },
    ids: (_root, { ids }) => {
      if (ids.length > MAX_NODES_PER_REQUEST) throw badInput(`At most ${MAX_NODES_PER_REQUEST} ids per request`, 'ids');
      return ids;
    },
  }),
);
