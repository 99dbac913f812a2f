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
      ...(appError.httpStatus ? { http: { status: appError.httpStatus } } : {}),
    },
  });
}

/**
 * The one place where failures become client errors: AppErrors keep their code and message,
 * GraphQL's own parse/validation errors pass through, anything else is logged and masked.
 */
export function createErrorMasker(logger: Logger) {
  return (error: unknown, message: string): Error => {
    const appError = findAppError(error);
    if (appError) return toGraphQLError(appError, error instanceof GraphQLError ? error : undefined);
    if (error instanceof GraphQLError && !error.originalError) return error;
    // Pothos rejects malformed arguments (e.g. a global id of the wrong type) with this error.
    if (error instanceof GraphQLError && error.originalError?.name === 'PothosValidationError') {
      return toGraphQLError(new AppError('BAD_USER_INPUT', error.originalError.message), error);
    }
    if (error instanceof GraphQLError && error.originalError instanceof GraphQLError) return error.originalError;
    logger.error({ err: error }, 'unexpected error');
    return createGraphQLError(message, {
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
  };
}
