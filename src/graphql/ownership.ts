import type { GraphQLContext } from './context.js';
import { NO_ROW_ID } from './global-id.js';

/**
 * Options shared by nodes that belong to one user (API keys, conversations, messages):
 * `node(id)` looks them up only among the viewer's own rows, so anyone else's id is null, and
 * the type-level scope refuses them wherever else they might be reached.
 */
export const ownedByViewer = {
  id: { field: 'id' },
  nullable: true,
  findUnique: (id: string, ctx: GraphQLContext) => ({ id, userId: ctx.viewer?.id ?? NO_ROW_ID }),
  authScopes: (row: { userId: string }, ctx: GraphQLContext) => row.userId === ctx.viewer?.id,
} as const;

/** Data about a user (their usage, credits, quota, billing) is for that user and for admins. */
export const isSelfOrAdmin = (userId: string, ctx: GraphQLContext) =>
  ctx.viewer !== null && (ctx.viewer.id === userId || ctx.viewer.role === 'ADMIN');
