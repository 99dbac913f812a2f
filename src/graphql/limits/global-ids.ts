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
  type OperationDefinitionNode,
  type ValueNode,
} from 'graphql';
import { badInput, type AppError } from '../../errors.js';
import { decodeGlobalId } from '../../global-id.js';

/** An argument of an operation whose value is, or may contain, an ID. */
interface IdArgument {
  name: string;
  value: ValueNode;
  type: GraphQLInputType;
}

// Which arguments to check depends on the operation only; Yoga reuses the parsed operation for
// the same query text, so it is found once, and each request only reads those arguments.
const idArgumentsOf = new WeakMap<OperationDefinitionNode, IdArgument[]>();

/**
 * Every ID argument here is a Relay global id. Checking them before execution lets the error
 * name the argument (`messageId`, `input.conversationId`), which the decoder, called deep
 * inside Pothos, cannot know. `document` holds `operation` and its fragments.
 */
export function findInvalidGlobalId(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
): AppError | undefined {
  let idArguments = idArgumentsOf.get(operation);
  if (!idArguments) {
    idArguments = collectIdArguments(schema, document);
    idArgumentsOf.set(operation, idArguments);
  }
  for (const { name, value, type } of idArguments) {
    const path = invalidIdPath(valueFromAST(value, type, variables), type, name);
    if (path) return badInput(`${path} is not a valid ID`, path);
  }
  return undefined;
}

function collectIdArguments(schema: GraphQLSchema, document: DocumentNode): IdArgument[] {
  const typeInfo = new TypeInfo(schema);
  const found: IdArgument[] = [];
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Argument(node) {
        const argument = typeInfo.getArgument();
        const named = argument && getNamedType(argument.type);
        if (named && (named.name === 'ID' || isInputObjectType(named))) {
          found.push({ name: node.name.value, value: node.value, type: argument.type });
        }
      },
    }),
  );
  return found;
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
