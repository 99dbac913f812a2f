import { createLogger, type Logger } from '../../src/logger.js';

/** The app's own logger (redaction, serializers, request ids) writing to memory instead of stdout. */
export function captureLogs(level = 'debug'): { logger: Logger; lines: string[]; entries(): Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (line: string) => void lines.push(line) });
  return { logger, lines, entries: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}
