import { createRequire } from 'node:module';
import { pino, transport, type DestinationStream, type Logger } from 'pino';
import { currentRequest } from './observability/request-context.js';
import { describeError } from './observability/safe-error.js';

export type { Logger };

/**
 * Structured JSON logs. Credentials and message text never reach the log: the redaction
 * paths below cover the places they could appear (headers, connection params, variables), and
 * errors are logged without the messages of library errors (Prisma's quote the query's
 * arguments). Every line logged while serving a request carries its `requestId`.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      mixin: () => {
        const request = currentRequest();
        return request ? { requestId: request.requestId } : {};
      },
      serializers: { err: describeError },
      hooks: {
        // Given an error and no message, pino would make the error's raw message the line's message.
        logMethod(args, method) {
          const [first, second] = args as unknown[];
          const isError = first instanceof Error || (first as { err?: unknown } | null)?.err !== undefined;
          if (isError && typeof second !== 'string') return method.call(this, first as object, 'error');
          return method.apply(this, args);
        },
      },
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'headers.authorization',
          'connectionParams.authorization',
          '*.password',
          '*.refreshToken',
          '*.accessToken',
          '*.secret',
          '*.content',
          'variables',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

/**
 * Readable, coloured lines for a terminal (`LOG_FORMAT=pretty`, as `npm run dev` sets). pino-pretty
 * is a dev dependency: undefined when it is not installed (a production image), so JSON is written.
 */
export function prettyDestination(): DestinationStream | undefined {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
  } catch {
    return undefined;
  }
  return transport({ target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } });
}
