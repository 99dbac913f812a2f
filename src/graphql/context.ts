import type { IncomingMessage } from 'node:http';
import DataLoader from 'dataloader';
import type { AccountDeps } from '../auth/accounts.js';
import type { Admin } from '../admin/admin.js';
import type { PasswordHasher } from '../auth/passwords.js';
import type { RevocationBus } from '../auth/revocations.js';
import type { Billing } from '../billing/checkout.js';
import type { Authenticate, Viewer } from '../auth/viewer.js';
import type { ChatService } from '../chat/chat-service.js';
import { unauthenticated } from '../errors.js';
import type { Message } from '../generated/prisma/client.js';
import { messageSiblings, type SiblingsKey } from '../chat/message-tree.js';
import type { Metering } from '../metering/metering.js';
import { conversationUsage, type UsageTotals } from '../metering/queries.js';
import type { Config } from '../config.js';
import type { PrismaClient } from '../db/client.js';
import type { Logger } from '../logger.js';
import type { RateLimiter } from '../rate-limit/limiter.js';
import type { RealtimeSessions } from '../realtime/realtime-sessions.js';
import { clientIp } from '../rate-limit/client-ip.js';

/** Long-lived dependencies the resolvers call into; wired once in app.ts. */
export interface Services {
  config: Config;
  prisma: PrismaClient;
  authenticate: Authenticate;
  passwords: PasswordHasher;
  logger: Logger;
  chat: ChatService;
  metering: Metering;
  billing: Billing;
  realtime: RealtimeSessions;
  rateLimiter: RateLimiter;
  revocations: RevocationBus;
  admin: Admin;
}

/** Per-request batching of aggregates that plugin-prisma cannot load as relations. */
export interface Loaders {
  conversationUsage: DataLoader<string, UsageTotals>;
  messageSiblings: DataLoader<SiblingsKey, Message[], string>;
}

export interface GraphQLContext {
  viewer: Viewer | null;
  /** The client's address (for anonymous rate limits); `unknown` for in-process requests. */
  ip: string;
  services: Services;
  loaders: Loaders;
}

function createLoaders(services: Services): Loaders {
  return {
    conversationUsage: new DataLoader((ids) => conversationUsage(services.prisma, ids)),
    messageSiblings: new DataLoader((keys) => messageSiblings(services.prisma, keys), {
      cacheKeyFn: (key) => `${key.conversationId}:${key.parentId ?? ''}`,
    }),
  };
}

/**
 * Per-operation context for HTTP and graphql-ws alike: the credential comes from the
 * Authorization header, or from connectionParams.authorization on a WebSocket.
 */
export function createContextFactory(services: Services) {
  return async (initial: {
    request?: Request;
    /** The Node request, over HTTP and on a WebSocket's upgrade. */
    req?: IncomingMessage;
    connectionParams?: Readonly<Record<string, unknown>>;
  }): Promise<GraphQLContext> => {
    const fromParams = initial.connectionParams?.authorization;
    const authorization =
      typeof fromParams === 'string' ? fromParams : (initial.request?.headers.get('authorization') ?? undefined);
    return {
      viewer: await services.authenticate(authorization),
      ip: clientIp(initial.req, services.config.http.trustProxyHops),
      services,
      loaders: createLoaders(services),
    };
  };
}

/** The signed-in viewer; resolvers behind the `authenticated` scope use it to narrow the type. */
export function requireViewer(ctx: GraphQLContext): Viewer {
  if (!ctx.viewer) throw unauthenticated();
  return ctx.viewer;
}

/** What the account use cases need, from a request's services. */
export function accountDeps({ services }: GraphQLContext): AccountDeps {
  return {
    prisma: services.prisma,
    auth: services.config.auth,
    passwords: services.passwords,
    revocations: services.revocations,
    signupCreditsMicros: services.config.billing.signupCreditsMicros,
    adminEmails: services.config.admin.emails,
  };
}
