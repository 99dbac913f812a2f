import { GraphQLError } from 'graphql';
import { createGraphQLError } from 'graphql-yoga';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';

function findAppError(error: unknown): AppError | undefined {
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth += 1) {
    if (current instanceof AppError) return current;
    current = (current as { originalError?: unknown }).originalError;
  }
  return undefined;
}

export function toGraphQLError(appError: AppError, source?: GraphQLError): GraphQLError {
  return createGraphQLError(appError.message, {
    nodes: source?.nodes,
    path: source?.path,
    extensions: {
      code: appError.code,
      ...appError.details,
      ...(appError.httpStatus ? { http: { status: appError.httpStatus, ...retryAfterHeader(appError) } } : {}),
    },
  });
}

function retryAfterHeader(appError: AppError): { headers?: Record<string, string> } {
  const seconds = appError.details.retryAfter;
  return typeof seconds === 'number' ? { headers: { 'Retry-After': String(seconds) } } : {};
}

/**
 * What a failure shows the client when it is an expected one: AppErrors keep their code and
 * message, GraphQL's own parse/validation errors pass through. Undefined for anything else.
 */
export function toClientError(error: unknown): GraphQLError | undefined {
  const appError = findAppError(error);
  if (appError) return toGraphQLError(appError, error instanceof GraphQLError ? error : undefined);
  if (error instanceof GraphQLError && !error.originalError) return error;
  // Pothos rejects malformed arguments (e.g. a global id of the wrong type) with this error.
  if (error instanceof GraphQLError && error.originalError?.name === 'PothosValidationError') {
    return toGraphQLError(new AppError('BAD_USER_INPUT', error.originalError.message), error);
  }
  if (error instanceof GraphQLError && error.originalError instanceof GraphQLError) return error.originalError;
  // A row the operation had found was deleted while it ran (a conversation deleted mid-reply).
  if (error instanceof GraphQLError && isRecordGone(error.originalError)) {
    return toGraphQLError(new AppError('NOT_FOUND', 'It was deleted while this request ran'), error);
  }
  return undefined;
}

/** Prisma's "record required but not found" (P2025), carrying nothing of the query. */
function isRecordGone(error: unknown): boolean {
  return (error as { name?: string; code?: string } | undefined)?.code === 'P2025' && (error as Error).name === 'PrismaClientKnownRequestError';
}

/**
 * The one place where failures become client errors: expected ones as toClientError makes
 * them, anything else is logged, reported and masked.
 */
export function createErrorMasker(logger: Logger, reportError: (error: unknown) => void) {
  return (error: unknown, message: string): Error => {
    const clientError = toClientError(error);
    if (clientError) return clientError;
    // GraphQL's wrapper only adds the path; the logger and the reporter sanitize the original.
    const original = error instanceof GraphQLError ? (error.originalError ?? error) : error;
    logger.error({ err: original, path: error instanceof GraphQLError ? error.path?.join('.') : undefined }, 'unexpected error');
    reportError(original);
    return createGraphQLError(message, {
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
  };
}
