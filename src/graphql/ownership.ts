import type { GraphQLContext } from './context.js';
import { NO_ROW_ID } from '../global-id.js';
import type { READ, READ_ACCOUNT } from './read-scopes.js';

/**
 * Options shared by nodes that belong to one user (API keys, conversations, messages):
 * `node(id)` looks them up only among the viewer's own rows, so anyone else's id is null, and
 * the type-level scope refuses them wherever else they might be reached, as it refuses an API
 * key without the scopes that reading them needs.
 */
export const ownedByViewer = (readScopes: typeof READ | typeof READ_ACCOUNT) =>
  ({
    id: { field: 'id' },
    nullable: true,
    findUnique: (id: string, ctx: GraphQLContext) => ({ id, userId: ctx.viewer?.id ?? NO_ROW_ID }),
    runScopesOnType: true,
    authScopes: (row: { userId: string }, ctx: GraphQLContext) => row.userId === ctx.viewer?.id && readScopes,
  }) as const;

/** Data about a user (their usage, credits, quota, billing) is for that user and for admins. */
export const isSelfOrAdmin = (userId: string, ctx: GraphQLContext) =>
  ctx.viewer !== null && (ctx.viewer.id === userId || ctx.viewer.role === 'ADMIN');
