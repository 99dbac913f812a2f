/** Stable codes that clients may rely on: part of the public GraphQL contract. */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'QUOTA_EXCEEDED'
  | 'INSUFFICIENT_CREDITS'
  | 'RATE_LIMITED'
  | 'UPSTREAM_ERROR'
  /** The provider refused on policy grounds: not retried, not failed over. */
  | 'CONTENT_FILTERED'
  | 'LLM_NOT_CONFIGURED'
  | 'SHUTTING_DOWN';

/**
 * An expected failure. Domain modules throw these; the GraphQL layer turns them into errors
 * with `extensions.code` (and `details`), everything else is masked.
 */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    /** HTTP status for errors that fail a whole request (a bad credential), else undefined. */
    readonly httpStatus?: number,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const unauthenticated = (message = 'Authentication required') => new AppError('UNAUTHENTICATED', message);
/**
 * The credential presented with the request (Authorization header or connectionParams) is bad,
 * expired or revoked: HTTP 401 tells the client to drop it and sign in again. A missing sign-in
 * or a failed login is `unauthenticated` instead, answered like any other GraphQL error.
 */
export const invalidCredential = (message: string) => new AppError('UNAUTHENTICATED', message, {}, 401);
export const forbidden = (message = 'Not allowed') => new AppError('FORBIDDEN', message);
export const notFound = (what: string) => new AppError('NOT_FOUND', `${what} not found`);
export const badInput = (message: string, field?: string) =>
  new AppError('BAD_USER_INPUT', message, field ? { field } : {});

/** Seconds a client refused during shutdown waits before retrying (another instance takes it). */
export const SHUTDOWN_RETRY_AFTER_SECONDS = 2;
export const SHUTTING_DOWN_MESSAGE = 'The server is shutting down; retry shortly';
/** New work arriving once shutdown has begun: HTTP 503 with Retry-After, safe to retry. */
export const shuttingDown = () =>
  new AppError('SHUTTING_DOWN', SHUTTING_DOWN_MESSAGE, { retryAfter: SHUTDOWN_RETRY_AFTER_SECONDS }, 503);

/**
 * The server cannot start for a reason its operator can fix (a taken port, an unreachable Redis,
 * a data directory in use): reported as one line naming what to change, without a stack.
 */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** Why a connection failed, for a start-up line: Node's network errors by their code (ECONNREFUSED, ENOTFOUND), others by their message. */
export function connectionFailureReason(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  return error instanceof Error ? error.message : String(error);
}
