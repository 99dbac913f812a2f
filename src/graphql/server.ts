import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { createContextFactory, type GraphQLContext, type Services } from './context.js';
import { useDocumentLimits } from './limits/document-limits.js';
import { useTrustedDocuments, type TrustedDocuments } from './trusted-documents.js';
import { useOperationLimits } from './limits/operation-limits.js';
import { useRateLimitStatus } from './limits/rate-limit-status.js';
import { schema } from './schema.js';
import { useStreamEventShortcut } from './stream-event-shortcut.js';
import { useGraphQLMetrics } from '../observability/graphql-metrics.js';
import type { Metrics } from '../observability/metrics.js';
import { useRequestUser } from '../observability/request-context.js';

/** What the HTTP layer adds to every request's context. */
export interface ServerContext {
  requestId: string;
}

export type GraphQLServer = YogaServerInstance<ServerContext, GraphQLContext>;

/** Headers that prove a request is not a browser's "simple" cross-site request. */
export const CSRF_HEADERS = ['x-graphql-yoga-csrf', 'apollo-require-preflight', 'graphql-require-preflight'];

/**
 * CSRF prevention for POSTs: a form post, `text/plain` or a body without a content type (what a
 * browser sends cross-site without a preflight) must carry one of CSRF_HEADERS. GETs pass:
 * they only run queries (Yoga refuses mutations over GET), and credentials here are bearer
 * tokens, never cookies, so a forged GET carries none; urql sends its queries as GETs.
 */
function usePostCSRFPrevention(): Plugin {
  const csrf = useCSRFPrevention({ requestHeaders: CSRF_HEADERS });
  return {
    onRequestParse(payload) {
      if (payload.request.method !== 'GET') return csrf.onRequestParse?.(payload);
    },
  };
}

export function createGraphQLServer(
  services: Services,
  maskError: (error: unknown, message: string) => Error,
  metrics: Metrics['graphql'],
  trustedDocuments?: TrustedDocuments,
): GraphQLServer {
  const { config, logger } = services;
  const contextFactory = createContextFactory(services);
  return createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    batching: false,
    // The HTTP server refuses a body over the limit, or without a Content-Length, before Yoga
    // sees it, and Node never reads past that length. Yoga's own check would pipe every body
    // through a transform stream again: a tenth of a small query's cost.
    maxRequestBodySize: false,
    // SSE: GraphiQL then sends subscriptions with the Headers tab's Authorization; over WS it
    // would connect without it, and messageStream would refuse an anonymous subscriber.
    graphiql: config.http.graphiql ? { title: 'Switchboard', subscriptionsProtocol: 'SSE' } : false,
    // GraphiQL's assets served from the package, not a CDN: works offline and behind strict proxies.
    renderGraphiQL,
    // No CORS headers unless origins are allow-listed: browsers then only allow same-origin use.
    cors: config.http.corsOrigins.length
      ? { origin: config.http.corsOrigins, credentials: true, methods: ['GET', 'POST'] }
      : false,
    context: (initial) => contextFactory(initial),
    maskedErrors: { maskError },
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      // Unexpected errors are logged once, sanitized, by the error masker; as a string here,
      // a Prisma error would bring its arguments along.
      error: (error) => logger.debug({ err: error }, 'graphql error'),
    },
    plugins: [
      useGraphQLMetrics(metrics),
      useRequestUser(),
      usePostCSRFPrevention(),
      ...(trustedDocuments ? [useTrustedDocuments(trustedDocuments)] : []),
      useDocumentLimits(config.limits.document, { suggestions: config.http.introspection }),
      useOperationLimits(config.limits, { suggestions: config.http.introspection }),
      useRateLimitStatus(),
      ...(config.http.introspection ? [] : [useDisableIntrospection()]),
      useStreamEventShortcut(),
    ],
  });
}
