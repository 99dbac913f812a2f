import { getOperationAST, type DocumentNode, type ExecutionResult, type GraphQLError } from 'graphql';
import { handleStreamOrSingleExecutionResult, type Plugin } from 'graphql-yoga';
import { toClientError } from '../graphql/errors.js';
import type { Metrics } from './metrics.js';

// Operation names are chosen by clients: beyond this many distinct ones they are counted as
// "other", so that a client cannot grow the label set (and the scrape) without bound.
const MAX_OPERATION_NAMES = 100;
const MAX_NAME_LENGTH = 64;

/**
 * Counts operations, their latency and the error codes clients get. An envelop plugin, so it
 * sees HTTP, SSE and graphql-ws alike. Its result hooks run before Yoga masks errors, so each
 * error is counted with the code the masker will give it.
 */
export function useGraphQLMetrics(metrics: Metrics['graphql']): Plugin {
  const knownNames = new Set<string>();
  const labelsOf = (args: { document: DocumentNode; operationName?: string | null }) => {
    const operation = getOperationAST(args.document, args.operationName);
    let name = operation?.name?.value.slice(0, MAX_NAME_LENGTH) ?? 'anonymous';
    if (!knownNames.has(name)) {
      if (knownNames.size < MAX_OPERATION_NAMES) knownNames.add(name);
      else name = 'other';
    }
    return { operation_name: name, operation_type: operation?.operation ?? 'unknown' };
  };
  const countError = (error: GraphQLError | Error) =>
    metrics.errors.inc({ code: String(toClientError(error)?.extensions.code ?? 'INTERNAL_SERVER_ERROR') });
  const countErrors = ({ result }: { result: ExecutionResult }) => result.errors?.forEach(countError);

  return {
    // A bad credential fails the operation while its context is built, before it executes.
    onPluginInit: ({ registerContextErrorHandler }) => registerContextErrorHandler(({ error }) => countError(error as Error)),
    onParse: () => ({ result }) => {
      if (result instanceof Error) metrics.errors.inc({ code: 'GRAPHQL_PARSE_FAILED' });
    },
    onValidate: () => ({ valid, result }) => {
      if (!valid) metrics.errors.inc({ code: 'GRAPHQL_VALIDATION_FAILED' }, result.length);
    },
    onExecute({ args }) {
      const labels = labelsOf(args);
      metrics.operations.inc(labels);
      const stopTimer = metrics.duration.startTimer(labels);
      return {
        onExecuteDone(payload) {
          stopTimer();
          return handleStreamOrSingleExecutionResult(payload, countErrors);
        },
      };
    },
    onSubscribe({ args }) {
      metrics.operations.inc(labelsOf(args));
      return {
        onSubscribeResult: (payload) => handleStreamOrSingleExecutionResult(payload, countErrors),
        onSubscribeError: ({ error }) => countError(error as Error),
      };
    },
  };
}
