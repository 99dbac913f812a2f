import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { parse } from 'graphql';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { createContextFactory, type GraphQLContext, type Services } from './context.js';
import { schema } from './schema.js';

/** What the HTTP layer adds to every request's context. */
export interface ServerContext {
  requestId: string;
}

export type GraphQLServer = YogaServerInstance<ServerContext, GraphQLContext>;

// A document this large is either a mistake or an attack; parsing it is the expensive part.
export const MAX_DOCUMENT_TOKENS = 5000;

function useParserLimits(): Plugin {
  return {
    onParse({ setParseFn }) {
      setParseFn((source, options) => parse(source, { ...options, maxTokens: MAX_DOCUMENT_TOKENS }));
    },
  };
}

export function createGraphQLServer(
  services: Services,
  maskError: (error: unknown, message: string) => Error,
): GraphQLServer {
  const { config, logger } = services;
  const contextFactory = createContextFactory(services);
  return createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    batching: false,
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
      // Unexpected errors are logged once, with their stack, by the error masker.
      error: (...args) => logger.debug(args.map(String).join(' ')),
    },
    plugins: [
      useParserLimits(),
      ...(config.http.introspection ? [] : [useDisableIntrospection()]),
    ],
  });
}
