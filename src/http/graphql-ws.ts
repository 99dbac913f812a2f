import type { Server } from 'node:http';
import type { ExecutionArgs, GraphQLError } from 'graphql';
import { createGraphQLError } from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Authenticate } from '../auth/viewer.js';
import type { GraphQLServer } from '../graphql/server.js';
import type { Logger } from '../logger.js';

export interface GraphQLWsOptions {
  httpServer: Server;
  yoga: GraphQLServer;
  authenticate: Authenticate;
  logger: Logger;
  maskError: (error: unknown, message: string) => Error;
  maxPayloadBytes: number;
  maxSubscriptionsPerConnection: number;
  /** Clients that never send connection_init are dropped after this long. */
  initTimeoutMs: number;
}

type EnvelopedRoot = {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
};

/**
 * graphql-ws on the HTTP server's /graphql path. Operations run through Yoga's envelop, so
 * the same context, error masking and plugins apply as on HTTP.
 */
export function attachGraphQLWs(options: GraphQLWsOptions) {
  const { yoga, authenticate, logger } = options;
  const wss = new WebSocketServer({ server: options.httpServer, path: '/graphql', maxPayload: options.maxPayloadBytes });
  const activeOperations = new WeakMap<object, Set<string>>();
  let running = 0;
  let onIdle: (() => void) | undefined;
  const finished = (socket: object, id: string) => {
    if (!activeOperations.get(socket)?.delete(id)) return;
    running -= 1;
    if (running === 0) onIdle?.();
  };

  const server = useServer<Record<string, unknown> | undefined>(
    {
      connectionInitWaitTimeout: options.initTimeoutMs,
      // A bad credential is refused at connection time (close code 4403), before any operation.
      onConnect: async (ctx) => {
        try {
          await authenticate(ctx.connectionParams?.authorization as string | undefined);
          return true;
        } catch {
          return false;
        }
      },
      onSubscribe: async (ctx, id, payload) => {
        const operations = activeOperations.get(ctx.extra.socket) ?? new Set<string>();
        activeOperations.set(ctx.extra.socket, operations);
        if (operations.size >= options.maxSubscriptionsPerConnection) {
          return [operationError(`At most ${options.maxSubscriptionsPerConnection} operations per connection`, 'BAD_USER_INPUT')];
        }
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          connectionParams: ctx.connectionParams,
        });
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [error as GraphQLError];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        let contextValue;
        try {
          contextValue = await contextFactory();
        } catch (error) {
          return [options.maskError(error, 'Unexpected error.') as GraphQLError];
        }
        operations.add(id);
        running += 1;
        const rootValue: EnvelopedRoot = { execute, subscribe };
        return {
          schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue,
          rootValue,
        };
      },
      onComplete: (ctx, id) => finished(ctx.extra.socket, id),
      onError: (ctx, id) => finished(ctx.extra.socket, id),
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
    },
    wss,
  );
  wss.on('error', (error) => logger.error({ err: error }, 'websocket server error'));

  return {
    wss,
    /** Waits (bounded) until every operation has sent its last result, e.g. streams their `done`. */
    drain: (timeoutMs: number) =>
      new Promise<void>((resolve) => {
        if (running === 0) return resolve();
        const timer = setTimeout(resolve, timeoutMs);
        onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      }),
    /** Closes every socket with 1001 (going away) and stops accepting new ones. */
    dispose: () => server.dispose(),
  };
}

function operationError(message: string, code: string): GraphQLError {
  return createGraphQLError(message, { extensions: { code } });
}
