import { AppError } from '../errors.js';

/** An error reduced to what may be logged or reported: no values that came from a request. */
export interface SafeError {
  type: string;
  /** Only for errors raised by our own code or the runtime (see MESSAGE_SAFE). */
  message?: string;
  /** A library's error code (Prisma's P2002, PostgreSQL's SQLSTATE, Node's ECONNREFUSED). */
  code?: string;
  /** Which details Prisma had (its `meta`), without their values. */
  metaKeys?: string[];
  /** The stack's "at …" lines, without the message that heads a stack. */
  frames?: string[];
  cause?: SafeError;
}

/**
 * Error classes whose messages are written by our code or the runtime. Library errors are not
 * among them: Prisma's messages quote the query's arguments (message text, emails, hashes) and
 * PostgreSQL's detail repeats the failing row.
 */
const MESSAGE_SAFE: ReadonlySet<unknown> = new Set([Error, TypeError, RangeError, ReferenceError, AppError]);
const CODE_PATTERN = /^[\w.-]{1,40}$/;
const MAX_FRAMES = 30;
const MAX_CAUSES = 3;

export function describeError(error: unknown, depth = 0): SafeError {
  if (!(error instanceof Error)) return { type: typeof error };
  const safe: SafeError = { type: error.name };
  if (MESSAGE_SAFE.has(error.constructor)) safe.message = error.message;
  const { code, meta } = error as { code?: unknown; meta?: unknown };
  if ((typeof code === 'string' || typeof code === 'number') && CODE_PATTERN.test(String(code))) safe.code = String(code);
  if (meta && typeof meta === 'object') safe.metaKeys = Object.keys(meta);
  const frames = stackFrames(error);
  if (frames.length) safe.frames = frames;
  if (error.cause !== undefined && depth < MAX_CAUSES) safe.cause = describeError(error.cause, depth + 1);
  return safe;
}

/**
 * The stack's "at …" lines only: the stack starts with the message, which may span many
 * lines (Prisma's do, with the arguments in them).
 */
function stackFrames(error: Error): string[] {
  const header = `${error.name}: ${error.message}`;
  const stack = error.stack?.startsWith(header) ? error.stack.slice(header.length) : (error.stack ?? '');
  return stack
    .split('\n')
    .filter((line) => /^\s+at \S.*:\d+:\d+\)?$/.test(line))
    .slice(0, MAX_FRAMES)
    .map((line) => line.trim());
}
