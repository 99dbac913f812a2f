import { complexityFromQuery } from '@pothos/plugin-complexity';
import {
  GraphQLError,
  Kind,
  getOperationAST,
  getVariableValues,
  type DefinitionNode,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
} from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import type { Limits } from '../../config.js';
import { AppError, badInput } from '../../errors.js';
import { toGraphQLError } from '../errors.js';
import { limitError, withoutSuggestions } from './document-limits.js';
import { findInvalidGlobalId } from './global-ids.js';

/**
 * Limits that need the request's variables, checked after validation and before execution:
 * the variables' size and shape (before graphql-js coerces them, which is where thousands of
 * unknown keys get expensive), their types (as BAD_USER_INPUT), then the operation's cost with
 * its real page sizes. A refusal is the whole result, over HTTP, SSE and graphql-ws alike.
 */
export function useOperationLimits(limits: Limits, options: { suggestions: boolean }): Plugin {
  const refusal = (args: ExecutionArgs): ExecutionResult | undefined => {
    const shapeError = checkVariables(args.variableValues, limits.variables);
    if (shapeError) return { errors: [shapeError] };
    const operation = getOperationAST(args.document, args.operationName);
    if (!operation) return undefined; // execute reports the missing or ambiguous operation
    const coerced = getVariableValues(args.schema, operation.variableDefinitions ?? [], args.variableValues ?? {}, { maxErrors: 10 });
    if (coerced.errors) {
      return { errors: coerced.errors.map((error) => badUserInput(options.suggestions ? error : withoutSuggestions(error))) };
    }
    // Measured on this operation alone (with its fragments): the cost helper reads the first one.
    const fragments = args.document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION);
    const document: DocumentNode = { kind: Kind.DOCUMENT, definitions: [operation, ...fragments] as DefinitionNode[] };
    const invalidId = findInvalidGlobalId(args.schema, document, operation, coerced.coerced);
    if (invalidId) return { errors: [toGraphQLError(invalidId)] };
    try {
      const { complexity } = complexityFromQuery(document, { schema: args.schema, ctx: args.contextValue as object, variables: args.variableValues ?? {} });
      const max = limits.document.maxCost;
      if (complexity > max) return { errors: [limitError(`The query costs ${complexity}, more than the limit of ${max}`, 'cost', max)] };
    } catch (error) {
      if (error instanceof AppError) return { errors: [toGraphQLError(error)] };
      if (error instanceof Error && error.name === 'PothosValidationError') return { errors: [badUserInput(error)] };
      throw error;
    }
    return undefined;
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const result = refusal(args);
      if (result) setResultAndStopExecution(result);
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const result = refusal(args);
      if (result) setResultAndStopExecution(result);
    },
  };
}

function badUserInput(error: Error): GraphQLError {
  const nodes = error instanceof GraphQLError ? error.nodes : undefined;
  return createGraphQLError(error.message, { nodes, extensions: { code: 'BAD_USER_INPUT' } });
}

/**
 * Walks the raw variables without recursion, stopping at the first problem: too many values,
 * nested too deep, or a NUL character (PostgreSQL cannot store one in text).
 */
export function checkVariables(variables: unknown, limits: Limits['variables']): GraphQLError | undefined {
  if (variables == null) return undefined;
  const stack: { value: unknown; depth: number; path: string }[] = [{ value: variables, depth: 0, path: '' }];
  let count = 0;
  while (stack.length > 0) {
    const { value, depth, path } = stack.pop()!;
    if (++count > limits.maxValues) {
      return limitError(`Variables hold more than ${limits.maxValues} values`, 'variableValues', limits.maxValues);
    }
    if (typeof value === 'string') {
      if (value.includes('\u0000')) {
        return toGraphQLError(badInput(`Variable ${path} must not contain NUL (\\u0000) characters`, path.split('.').at(-1)));
      }
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= limits.maxDepth) {
      return limitError(`Variables are nested deeper than ${limits.maxDepth} levels`, 'variableDepth', limits.maxDepth);
    }
    for (const [key, child] of Object.entries(value)) {
      stack.push({ value: child, depth: depth + 1, path: path ? `${path}.${key}` : `$${key}` });
    }
  }
  return undefined;
}
