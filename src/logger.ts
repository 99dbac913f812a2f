import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Credentials and message text never reach the log: the redaction
 * paths below cover the places they could appear (headers, connection params, variables).
 */
export function createLogger(level: string): Logger {
  return pino({
    level,
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
  });
}
