import DataLoader from 'dataloader';
import type { Authenticate, Viewer } from '../auth/viewer.js';
import type { ChatService } from '../chat/chat-service.js';
import { unauthenticated } from '../errors.js';
import { conversationUsage, type UsageTotals } from '../usage/queries.js';
import type { Config } from '../config.js';
import type { PrismaClient } from '../db/client.js';
import type { Logger } from '../logger.js';

/** Long-lived dependencies the resolvers call into; wired once in app.ts. */
export interface Services {
  config: Config;
  prisma: PrismaClient;
  authenticate: Authenticate;
  logger: Logger;
  chat: ChatService;
}

/** Per-request batching of aggregates that plugin-prisma cannot load as relations. */
export interface Loaders {
  conversationUsage: DataLoader<string, UsageTotals>;
}

export interface GraphQLContext {
  viewer: Viewer | null;
  services: Services;
  loaders: Loaders;
}

function createLoaders(services: Services): Loaders {
  return { conversationUsage: new DataLoader((ids) => conversationUsage(services.prisma, ids)) };
}

/**
 * Per-operation context for HTTP and graphql-ws alike: the credential comes from the
 * Authorization header, or from connectionParams.authorization on a WebSocket.
 */
export function createContextFactory(services: Services) {
  return async (initial: {
    request?: Request;
    connectionParams?: Readonly<Record<string, unknown>>;
  }): Promise<GraphQLContext> => {
    const fromParams = initial.connectionParams?.authorization;
    const authorization =
      typeof fromParams === 'string' ? fromParams : (initial.request?.headers.get('authorization') ?? undefined);
    return { viewer: await services.authenticate(authorization), services, loaders: createLoaders(services) };
  };
}

/** The signed-in viewer; resolvers behind the `authenticated` scope use it to narrow the type. */
export function requireViewer(ctx: GraphQLContext): Viewer {
  if (!ctx.viewer) throw unauthenticated();
  return ctx.viewer;
}
