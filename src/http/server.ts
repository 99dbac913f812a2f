import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { GraphQLServer } from '../graphql/server.js';
import type { Logger } from '../logger.js';
import { runWithRequestId } from '../observability/request-context.js';
import { acceptedEncoding, createResponseCompressor } from './compression.js';
import { SHUTDOWN_RETRY_AFTER_SECONDS, SHUTTING_DOWN_MESSAGE } from '../errors.js';
import { isBodyTooLarge, respondHealth, respondReady, sendJson, type ReadinessChecks } from './health.js';
import { respondMetrics, type MetricsEndpoint } from './metrics.js';
import { respondStripeWebhook } from './stripe-webhook.js';
import { respondAttachment, type AttachmentEndpoint } from './attachments.js';
import { ATTACHMENT_PATH_PREFIX } from '../chat/attachments.js';
import type { StripeWebhooks } from '../billing/webhooks.js';

export interface HttpServerOptions {
  yoga: GraphQLServer;
  logger: Logger;
  maxRequestBytes: number;
  /** The body limit of a multipart request (GraphQL uploads), instead of maxRequestBytes. */
  maxUploadBytes: number;
  readinessChecks: ReadinessChecks;
  state: { shuttingDown: boolean };
  metrics: MetricsEndpoint;
  /** Absent without Stripe configuration (the route then answers 404). */
  stripeWebhooks?: StripeWebhooks;
  attachments: AttachmentEndpoint;
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  // Framing is refused here too; scripts are not restricted, GraphiQL's page runs inline ones.
  'content-security-policy': "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'cross-origin-opener-policy': 'same-origin',
  'x-permitted-cross-domain-policies': 'none',
};

// Accept a caller's request id only when it is short and plain, so it is safe to log and echo.
function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
}

/**
 * Routes: /graphql (Yoga: HTTP, SSE, GraphiQL), /health, /ready, /metrics, /webhooks/stripe,
 * /attachments/<id> (uploaded images); everything else 404.
 */
export function createHttpServer(options: HttpServerOptions): Server {
  const { yoga, logger } = options;
  const sendCompressed = createResponseCompressor();
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const requestId = requestIdOf(req);
    // Every line logged while serving the request, by any module, carries its id.
    runWithRequestId(requestId, () => handleRequest(req, res, requestId));
  });

  function handleRequest(req: IncomingMessage, res: ServerResponse, requestId: string): void {
    const started = process.hrtime.bigint();
    res.setHeader('x-request-id', requestId);
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      logger.info({ requestId, method: req.method, path: req.url?.split('?')[0], status: res.statusCode, ms }, 'request');
      // Once shutting down, a connection ends with its response: a kept-alive one would hold the close up until its timeout.
      if (options.state.shuttingDown) req.socket.end();
    });

    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health') return respondHealth(res);
    if (path === '/ready') return void respondReady(res, options.readinessChecks, options.state);
    if (path === '/metrics') return void respondMetrics(req, res, options.metrics);
    if (path === '/webhooks/stripe') {
      return void respondStripeWebhook(req, res, { webhooks: options.stripeWebhooks, maxBytes: options.maxRequestBytes, logger });
    }
    if (path?.startsWith(ATTACHMENT_PATH_PREFIX)) return void respondAttachment(req, res, options.attachments);
    if (path === '/graphql') {
      // The listener stays open while running work drains: new operations get a clear, retryable refusal.
      if (options.state.shuttingDown) {
        res.setHeader('retry-after', String(SHUTDOWN_RETRY_AFTER_SECONDS));
        res.setHeader('connection', 'close');
        return sendJson(res, 503, graphqlError(SHUTTING_DOWN_MESSAGE, 'SHUTTING_DOWN', { retryAfter: SHUTDOWN_RETRY_AFTER_SECONDS }));
      }
      // Uploads come as multipart requests (the GraphQL multipart request spec), with a limit of their own.
      const multipart = /^multipart\/form-data\b/i.test(req.headers['content-type'] ?? '');
      const maxBytes = multipart ? options.maxUploadBytes : options.maxRequestBytes;
      if (isBodyTooLarge(req, maxBytes)) {
        return sendJson(res, 413, graphqlError(`Request body exceeds ${maxBytes} bytes`, 'BAD_USER_INPUT'));
      }
      // Without a length the body size can't be checked before reading it; every GraphQL client sends one.
      if (req.method === 'POST' && req.headers['content-length'] === undefined) {
        return sendJson(res, 411, graphqlError('Content-Length is required', 'BAD_USER_INPUT'));
      }
      // Pages (GraphiQL's is ~9 MB) go out compressed to browsers that accept it.
      const encoding = req.method === 'GET' && req.headers.accept?.includes('text/html') ? acceptedEncoding(req) : undefined;
      if (encoding) {
        return void Promise.resolve(yoga.handleNodeRequestAndResponse(req, res, { requestId }))
          .then((response) => sendCompressed(response, res, encoding))
          .catch((error: unknown) => {
            logger.error({ err: error }, 'could not send the response');
            res.destroy();
          });
      }
      return void yoga(req, res, { requestId });
    }
    sendJson(res, 404, { error: 'Not found' });
  }
}

function graphqlError(message: string, code: string, details: Record<string, unknown> = {}) {
  return { errors: [{ message, extensions: { code, ...details } }] };
}
