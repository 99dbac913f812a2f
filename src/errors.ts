/** Stable codes that clients may rely on (SPEC section 3). */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'QUOTA_EXCEEDED'
  | 'INSUFFICIENT_CREDITS'
  | 'RATE_LIMITED'
  | 'UPSTREAM_ERROR'
  | 'LLM_NOT_CONFIGURED';

const httpStatusByCode: Partial<Record<ErrorCode, number>> = {
  UNAUTHENTICATED: 401,
};

/**
 * An expected failure. Domain modules throw these; the GraphQL layer turns them into errors
 * with `extensions.code` (and `details`), everything else is masked.
 */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AppError';
  }

  /** HTTP status for errors that fail a whole request (e.g. a bad token), else undefined. */
  get httpStatus(): number | undefined {
    return httpStatusByCode[this.code];
  }
}

export const unauthenticated = (message = 'Authentication required') => new AppError('UNAUTHENTICATED', message);
export const forbidden = (message = 'Not allowed') => new AppError('FORBIDDEN', message);
export const notFound = (what: string) => new AppError('NOT_FOUND', `${what} not found`);
export const badInput = (message: string, field?: string) =>
  new AppError('BAD_USER_INPUT', message, field ? { field } : {});
