import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  Kind,
  parse,
  type ASTVisitor,
  type FieldNode,
  type GraphQLError,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import type { Limits } from '../../config.js';

/** "Did you mean …" would reveal the schema that disabled introspection hides. */
export function withoutSuggestions<E extends Error>(error: E): E | GraphQLError {
  const message = error.message.replace(/ ?Did you mean .+\?$/, '');
  if (message === error.message) return error;
  const source = error as Partial<GraphQLError>;
  return createGraphQLError(message, { nodes: source.nodes, extensions: source.extensions });
}

/** A request refused by a limit: BAD_USER_INPUT, naming the limit and its value. */
export function limitError(message: string, limit: string, max?: number): GraphQLError {
  return createGraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', limit, ...(max === undefined ? {} : { max }) } });
}

/**
 * Limits on the document itself, checked while parsing and validating, before anything runs:
 * size in bytes (whitespace counts), tokens, depth, aliases, directives, at most one sign-in
 * mutation, no NUL characters in string literals. As a Yoga plugin they apply to HTTP, SSE and
 * graphql-ws alike (graphql-ws operations are parsed and validated through Yoga's envelop).
 */
export function useDocumentLimits(limits: Limits['document'], options: { suggestions: boolean }): Plugin {
  // graphql-armor's rules report through the validation context instead of throwing, so a
  // refusal is an ordinary validation error (a throw inside graphql-ws would close the socket).
  const report = (name: string, max: number) => ({
    propagateOnRejection: false,
    onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(limitError(error.message.replace(/^Syntax Error: /, ''), name, max))],
  });
  const rules: ValidationRule[] = [
    maxDepthRule({ n: limits.maxDepth, ...report('depth', limits.maxDepth) }) as unknown as ValidationRule,
    maxAliasesRule({ n: limits.maxAliases, allowList: [], ...report('aliases', limits.maxAliases) }) as unknown as ValidationRule,
    maxDirectivesRule({ n: limits.maxDirectives, ...report('directives', limits.maxDirectives) }) as unknown as ValidationRule,
    oneSignInPerOperation,
    noNulInStrings,
  ];
  return {
    onParse({ setParseFn }) {
      setParseFn((source, parseOptions) => {
        const text = typeof source === 'string' ? source : source.body;
        if (Buffer.byteLength(text) > limits.maxBytes) {
          throw limitError(`The document is larger than ${limits.maxBytes} bytes`, 'bytes', limits.maxBytes);
        }
        return parse(source, { ...parseOptions, maxTokens: limits.maxTokens });
      });
    },
    onValidate({ addValidationRule }) {
      for (const rule of rules) addValidationRule(rule);
      if (options.suggestions) return;
      return ({ valid, result, setResult }) => {
        if (!valid) setResult(result.map((error) => withoutSuggestions(error)));
      };
    },
  };
}

const SIGN_IN_FIELDS = new Set(['register', 'login', 'refreshToken']);

/** Several password checks in one request would multiply a rate-limited, deliberately slow call. */
const oneSignInPerOperation: ValidationRule = (context): ASTVisitor => ({
  OperationDefinition(operation) {
    if (operation.operation !== 'mutation') return;
    const count = rootFields(context, operation.selectionSet, new Set()).filter((f) => SIGN_IN_FIELDS.has(f.name.value)).length;
    if (count > 1) {
      context.reportError(limitError('At most one of register, login and refreshToken per operation', 'signIns', 1));
    }
  },
});

function rootFields(context: ValidationContext, set: SelectionSetNode, seen: Set<string>): FieldNode[] {
  return set.selections.flatMap((selection) => {
    if (selection.kind === Kind.FIELD) return [selection];
    if (selection.kind === Kind.INLINE_FRAGMENT) return rootFields(context, selection.selectionSet, seen);
    if (seen.has(selection.name.value)) return [];
    seen.add(selection.name.value);
    const fragment = context.getFragment(selection.name.value);
    return fragment ? rootFields(context, fragment.selectionSet, seen) : [];
  });
}

/** PostgreSQL cannot store NUL in text; refusing it here gives a clear error instead of a database one. */
const noNulInStrings: ValidationRule = (context): ASTVisitor => ({
  StringValue(node) {
    if (node.value.includes('\u0000')) {
      context.reportError(createGraphQLError('Text must not contain NUL (\\u0000) characters', { nodes: [node], extensions: { code: 'BAD_USER_INPUT' } }));
    }
  },
});
