import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { ExecutionArgs, GraphQLError } from 'graphql';
import { createGraphQLError } from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { isRevokedBy, type RevocationBus } from '../auth/revocations.js';
import type { Authenticate, Viewer } from '../auth/viewer.js';
import type { Limits } from '../config.js';
import { SHUTDOWN_RETRY_AFTER_SECONDS, SHUTTING_DOWN_MESSAGE } from '../errors.js';
import type { GraphQLServer } from '../graphql/server.js';
import { trustedQueryOf, type TrustedDocuments } from '../graphql/trusted-documents.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../observability/metrics.js';
import { sendFramesPerTick } from './frames-per-tick.js';
import { serverSocketClass } from './ws-protocol-errors.js';
import { runOperationWithRequestId } from '../observability/request-context.js';
import { clientIp } from '../rate-limit/client-ip.js';

export interface GraphQLWsOptions {
  httpServer: Server;
  yoga: GraphQLServer;
  authenticate: Authenticate;
  logger: Logger;
  maskError: (error: unknown, message: string) => Error;
  metrics: Pick<Metrics, 'trackWebSockets'>;
  limits: Limits['ws'];
  trustProxyHops: number;
  revocations: RevocationBus;
  /** Once shutting down, new sockets and operations are refused. */
  state: { shuttingDown: boolean };
  /** When set, only these documents run (see trusted-documents.ts). */
  trustedDocuments?: TrustedDocuments;
}

/**
 * Close codes. The official client gives up at once on these (it retries 4403, for half a
 * minute, which hides a bad credential from the user).
 */
export const CLOSE_UNAUTHORIZED = 4401;
export const CLOSE_TOO_MANY_CONNECTIONS = 4429;
/** "Try Again Later": the client reconnects, to another instance behind a load balancer. */
export const CLOSE_SHUTTING_DOWN = 1013;

type EnvelopedRoot = {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
  /** Each operation is a request of its own in the logs. */
  requestId: string;
};

/** What is known about one open socket. */
interface Connection {
  ip: string;
  viewer: Viewer | null;
  /** Ids of operations started and not finished; counted from the moment they are accepted. */
  operations: Set<string>;
}

/**
 * graphql-ws on the HTTP server's /graphql path. Operations run through Yoga's envelop, so
 * the same context, limits, error masking and plugins apply as on HTTP.
 */
export async function attachGraphQLWs(options: GraphQLWsOptions) {
  const { yoga, authenticate, logger, limits } = options;
  const wss = new WebSocketServer({
    server: options.httpServer,
    path: '/graphql',
    maxPayload: limits.maxPayloadBytes,
    WebSocket: serverSocketClass(logger),
    // During shutdown the handshake is answered 503 with Retry-After; clients see 1006 and retry.
    verifyClient: (_info, accept) =>
      options.state.shuttingDown
        ? accept(false, 503, 'Service Unavailable', { 'Retry-After': String(SHUTDOWN_RETRY_AFTER_SECONDS) })
        : accept(true),
  });
  const connections = new Map<WebSocket, Connection>();
  let running = 0;
  let onIdle: (() => void) | undefined;
  const finished = (socket: WebSocket, id: string) => {
    if (!connections.get(socket)?.operations.delete(id)) return;
    running -= 1;
    if (running === 0) onIdle?.();
  };
  const countWhere = (match: (connection: Connection) => boolean) => [...connections.values()].filter(match).length;

  // Registered before graphql-ws's own listener, so a socket over the cap is closed first.
  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    const ip = clientIp(request, options.trustProxyHops);
    if (countWhere((c) => c.ip === ip) >= limits.maxConnectionsPerIp) {
      socket.close(CLOSE_TOO_MANY_CONNECTIONS, 'Too many connections from this address');
      return;
    }
    connections.set(socket, { ip, viewer: null, operations: new Set() });
    sendFramesPerTick(socket, request.socket);
    socket.once('close', () => {
      running -= connections.get(socket)?.operations.size ?? 0;
      connections.delete(socket);
      if (running === 0) onIdle?.();
    });
  });

  const server = useServer<Record<string, unknown> | undefined, { socket: WebSocket; request: IncomingMessage }>(
    {
      connectionInitWaitTimeout: limits.initTimeoutMs,
      // A bad credential is refused at connection time, before any operation, with a reason.
      onConnect: async (ctx) => {
        const { socket } = ctx.extra;
        const connection = connections.get(socket);
        if (!connection) return false;
        if (options.state.shuttingDown) {
          socket.close(CLOSE_SHUTTING_DOWN, SHUTTING_DOWN_MESSAGE);
          return false;
        }
        try {
          connection.viewer = await authenticate(ctx.connectionParams?.authorization as string | undefined);
        } catch (error) {
          socket.close(CLOSE_UNAUTHORIZED, closeReason(`Unauthorized: ${(error as Error).message}`));
          return false;
        }
        const userId = connection.viewer?.id;
        if (userId && countWhere((c) => c.viewer?.id === userId) > limits.maxConnectionsPerUser) {
          socket.close(CLOSE_TOO_MANY_CONNECTIONS, 'Too many connections for this account');
          return false;
        }
        return true;
      },
      onSubscribe: async (ctx, id, payload) => {
        const { socket } = ctx.extra;
        const connection = connections.get(socket);
        if (!connection) return [operationError('Connection is closing', 'BAD_USER_INPUT')];
        if (options.state.shuttingDown) {
          return [operationError(SHUTTING_DOWN_MESSAGE, 'SHUTTING_DOWN', { retryAfter: SHUTDOWN_RETRY_AFTER_SECONDS })];
        }
        // The slot is taken before anything is awaited: a burst of subscribe messages cannot
        // all pass the check while the first ones are still authenticating.
        if (connection.operations.size >= limits.maxSubscriptionsPerConnection) {
          return [operationError(`At most ${limits.maxSubscriptionsPerConnection} operations per connection`, 'BAD_USER_INPUT')];
        }
        connection.operations.add(id);
        running += 1;
        const refuse = (errors: readonly GraphQLError[]) => {
          finished(socket, id);
          return errors;
        };
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket,
          params: payload,
          connectionParams: ctx.connectionParams,
        });
        const query = options.trustedDocuments ? trustedQueryOf(options.trustedDocuments, payload) : payload.query;
        if (typeof query !== 'string') return refuse([query]);
        let document;
        try {
          document = parse(query);
          const errors = validate(schema, document);
          if (errors.length > 0) return refuse(errors);
        } catch (error) {
          // Reported as this operation's error: a throw here would close the whole socket.
          return refuse([options.maskError(error, 'Invalid operation.') as GraphQLError]);
        }
        let contextValue;
        try {
          contextValue = await contextFactory();
        } catch (error) {
          return refuse([options.maskError(error, 'Unexpected error.') as GraphQLError]);
        }
        const rootValue: EnvelopedRoot = { execute, subscribe, requestId: randomUUID() };
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
      execute: (args) => runOperation(args, 'execute') as never,
      subscribe: (args) => runOperation(args, 'subscribe') as never,
    },
    wss,
  );
  wss.on('error', (error) => logger.error({ err: error }, 'websocket server error'));
  options.metrics.trackWebSockets({ connections: () => connections.size, subscriptions: () => running });

  // Sockets signed in with a revoked credential are closed; reconnecting with it is refused.
  const stopRevocations = await options.revocations.onRevoked((revocation) => {
    for (const [socket, connection] of connections) {
      if (connection.viewer && isRevokedBy(revocation, connection.viewer)) {
        socket.close(CLOSE_UNAUTHORIZED, 'Unauthorized: the credential was revoked');
      }
    }
  });

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
    dispose: async () => {
      await stopRevocations();
      await server.dispose();
    },
  };
}

function operationError(message: string, code: string, details: Record<string, unknown> = {}): GraphQLError {
  return createGraphQLError(message, { extensions: { code, ...details } });
}

// A close reason is at most 123 bytes.
function closeReason(text: string): string {
  return Buffer.byteLength(text) <= 123 ? text : `${Buffer.from(text).subarray(0, 120).toString('utf8')}...`;
}

function runOperation(args: ExecutionArgs, kind: 'execute' | 'subscribe') {
  const root = args.rootValue as EnvelopedRoot;
  return runOperationWithRequestId(root.requestId, () => root[kind](args));
}
