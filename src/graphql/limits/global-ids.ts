import {
  getNamedType,
  isInputObjectType,
  isListType,
  isNonNullType,
  TypeInfo,
  valueFromAST,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type GraphQLInputType,
  type GraphQLSchema,
} from 'graphql';
import { badInput, type AppError } from '../../errors.js';
import { decodeGlobalId } from '../global-id.js';

/**
 * Every ID argument here is a Relay global id. Checking them before execution lets the error
 * name the argument (`messageId`, `input.conversationId`), which the decoder, called deep
 * inside Pothos, cannot know.
 */
export function findInvalidGlobalId(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown>,
): AppError | undefined {
  const typeInfo = new TypeInfo(schema);
  let invalid: AppError | undefined;
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Argument(node) {
        const argument = typeInfo.getArgument();
        if (invalid || !argument) return;
        const path = invalidIdPath(valueFromAST(node.value, argument.type, variables), argument.type, node.name.value);
        if (path) invalid = badInput(`${path} is not a valid ID`, path);
      },
    }),
  );
  return invalid;
}

function invalidIdPath(value: unknown, type: GraphQLInputType, path: string): string | undefined {
  if (value == null) return undefined;
  const inner = isNonNullType(type) ? type.ofType : type;
  if (isListType(inner)) {
    const items = Array.isArray(value) ? value : [value];
    for (const item of items) {
      const found = invalidIdPath(item, inner.ofType, path);
      if (found) return found;
    }
    return undefined;
  }
  const named = getNamedType(inner);
  if (named.name === 'ID') {
    try {
      decodeGlobalId(String(value));
      return undefined;
    } catch {
      return path;
    }
  }
  if (isInputObjectType(named) && typeof value === 'object') {
    for (const [name, field] of Object.entries(named.getFields())) {
      const found = invalidIdPath((value as Record<string, unknown>)[name], field.type, `${path}.${name}`);
      if (found) return found;
    }
  }
  return undefined;
}
