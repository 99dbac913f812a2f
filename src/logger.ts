import { createRequire } from 'node:module';
import { destination as pinoDestination, pino, transport, type DestinationStream, type Logger } from 'pino';
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
 * Standard output, written asynchronously: lines logged while a write is under way go out together
 * in the next one, so a busy server makes one write per batch instead of one per line (a write
 * per request line took about a tenth of the CPU of serving `{ me { id } }`). Whatever is still
 * buffered is written before the process exits.
 */
export function stdoutDestination(): DestinationStream {
  const destination = pinoDestination({ dest: 1, sync: false });
  process.once('exit', () => destination.flushSync());
  return destination;
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
