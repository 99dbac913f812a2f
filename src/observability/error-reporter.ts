import { currentRequest } from './request-context.js';
import { describeError, type SafeError } from './safe-error.js';

export interface ErrorReporter {
  /** Reports an unexpected error, in the sanitized form the logs get, with the request id and user id. */
  report(error: unknown): void;
  /** Sends what is queued (bounded) and stops. */
  close(timeoutMs: number): Promise<void>;
}

const noReporter: ErrorReporter = { report: () => {}, close: async () => {} };

/**
 * Sentry, when a DSN is configured. The client is used through a scope of its own, not
 * `Sentry.init`: no global instrumentation, and several apps in one process (tests) each
 * report to their own DSN. No integrations either, so nothing about the request (headers,
 * cookies, body, variables, IP) is collected; the error itself is sent sanitized, so Prisma's
 * arguments (message text, emails) are not either. Only Sentry's core is used (its server client,
 * Node stack parser and transport machinery, envelopes sent with fetch): the Node SDK adds
 * OpenTelemetry, bundler plugins and a CLI that this reporter never runs. It is loaded only when
 * a DSN is set.
 */
export async function createErrorReporter(options: { dsn?: string; environment: string }): Promise<ErrorReporter> {
  if (!options.dsn) return noReporter;
  const [{ createStackParser, createTransport, Scope }, { nodeStackLineParser, ServerRuntimeClient }] = await Promise.all([
    import('@sentry/core'),
    import('@sentry/core/server'),
  ]);
  const client = new ServerRuntimeClient({
    dsn: options.dsn,
    environment: options.environment,
    platform: 'node',
    runtime: { name: 'node', version: process.version },
    transport: (transportOptions) =>
      createTransport(transportOptions, async ({ body }) => {
        // A copy: fetch's types take only a Uint8Array over a plain ArrayBuffer.
        const payload = typeof body === 'string' ? body : new Uint8Array(body);
        const response = await fetch(transportOptions.url, { method: 'POST', headers: transportOptions.headers, body: payload });
        await response.body?.cancel();
        return {
          statusCode: response.status,
          headers: { 'x-sentry-rate-limits': response.headers.get('x-sentry-rate-limits'), 'retry-after': response.headers.get('retry-after') },
        };
      }),
    stackParser: createStackParser(nodeStackLineParser()),
    integrations: [],
    sendClientReports: false,
  });
  return {
    report(error) {
      const request = currentRequest();
      const scope = new Scope();
      scope.setClient(client);
      if (request) scope.setTag('request_id', request.requestId);
      if (request?.userId) scope.setUser({ id: request.userId });
      scope.captureException(toReportable(describeError(error)));
    },
    close: async (timeoutMs) => void (await client.close(timeoutMs)),
  };
}

/** An Error carrying only the sanitized parts, for Sentry to parse its type and stack frames. */
function toReportable(safe: SafeError): Error {
  const error = new Error(safe.message ?? (safe.code ? `code ${safe.code}` : 'details withheld'));
  error.name = safe.type;
  error.stack = [`${safe.type}: ${error.message}`, ...(safe.frames ?? []).map((frame) => `    ${frame}`)].join('\n');
  return error;
}
