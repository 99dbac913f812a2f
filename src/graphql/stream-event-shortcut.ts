import { execute } from '@graphql-tools/executor';
import {
  createSourceEventStream,
  getOperationAST,
  Kind,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
  type FragmentDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { createGraphQLError, isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { StreamEvent } from '../streams/stream-hub.js';
import { FINAL_EVENT_FIELDS, streamEventLeaves, streamEventToolCallDeltas, toolCallDeltaLeaves } from './types/stream-event-fields.js';

/** Builds one event's `data`, as the executor would, from the event alone. */
export type EventBuilder = (event: StreamEvent) => Record<string, unknown>;

type Leaves<T> = Record<string, (value: T) => unknown>;

/**
 * A messageStream subscription whose events select only what an event carries (its text, seq,
 * done, tool-call pieces; message and usage, null until the final event) gets its events built
 * straight from them, without running the executor for each: most of what one event cost.
 * The executor still runs for the first event, which checks the caller may read events (that
 * depends on the caller alone, so the events after it may be read too), and for the final one,
 * whose message and usage are read, authorized and masked as any field.
 * Must come after the plugins that refuse an operation on subscribe (limits, scopes).
 */
export function useStreamEventShortcut(): Plugin {
  return {
    onSubscribe({ args, setSubscribeFn }) {
      const build = eventBuilderFor(args.document, args.operationName);
      if (build) setSubscribeFn((subscribeArgs) => subscribeBuildingEvents(subscribeArgs, build) as never);
    },
  };
}

const builders = new WeakMap<DocumentNode, Map<string | null | undefined, EventBuilder | null>>();

/** The builder for an operation's events, when every event but the final one can be built without the executor. */
export function eventBuilderFor(document: DocumentNode, operationName?: string | null): EventBuilder | undefined {
  let byOperation = builders.get(document);
  if (!byOperation) builders.set(document, (byOperation = new Map()));
  if (!byOperation.has(operationName)) byOperation.set(operationName, planEvents(document, operationName) ?? null);
  return byOperation.get(operationName) ?? undefined;
}

function planEvents(document: DocumentNode, operationName?: string | null): EventBuilder | undefined {
  const operation = getOperationAST(document, operationName);
  if (operation?.operation !== 'subscription' || operation.directives?.length) return undefined;
  const [root, ...others] = operation.selectionSet.selections;
  if (others.length > 0 || root?.kind !== Kind.FIELD || root.name.value !== 'messageStream' || root.directives?.length) return undefined;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const eventFields = collectFields([root], 'MessageStreamEvent', fragments);
  if (!eventFields) return undefined;
  const parts: [string, (event: StreamEvent) => unknown][] = [];
  for (const [key, nodes] of eventFields) {
    const name = nodes[0]!.name.value;
    if (FINAL_EVENT_FIELDS.has(name)) {
      parts.push([key, () => null]);
    } else if (name === 'toolCallDeltas') {
      const piece = objectBuilder(collectFields(nodes, 'ToolCallDelta', fragments), 'ToolCallDelta', toolCallDeltaLeaves);
      if (!piece) return undefined;
      parts.push([key, (event) => streamEventToolCallDeltas(event).map(piece)]);
    } else {
      const leaf = leafOf(name, 'MessageStreamEvent', streamEventLeaves);
      if (!leaf) return undefined;
      parts.push([key, leaf]);
    }
  }
  const rootKey = root.alias?.value ?? root.name.value;
  return (event) => ({ [rootKey]: buildObject(parts, event) });
}

function objectBuilder<T>(fields: Map<string, FieldNode[]> | undefined, typeName: string, leaves: Leaves<T>) {
  if (!fields) return undefined;
  const parts: [string, (value: T) => unknown][] = [];
  for (const [key, nodes] of fields) {
    const leaf = leafOf(nodes[0]!.name.value, typeName, leaves);
    if (!leaf) return undefined;
    parts.push([key, leaf]);
  }
  return (value: T) => buildObject(parts, value);
}

function leafOf<T>(name: string, typeName: string, leaves: Leaves<T>): ((value: T) => unknown) | undefined {
  if (name === '__typename') return () => typeName;
  return Object.hasOwn(leaves, name) ? leaves[name] : undefined;
}

function buildObject<T>(parts: [string, (value: T) => unknown][], value: T): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [key, leaf] of parts) object[key] = leaf(value);
  return object;
}

/**
 * The fields the selections of `nodes` ask of an object of type `typeName`, by response key in
 * the executor's order; undefined when a directive (@skip, @include, @defer...) could change them.
 */
function collectFields(
  nodes: readonly FieldNode[],
  typeName: string,
  fragments: Map<string, FragmentDefinitionNode>,
): Map<string, FieldNode[]> | undefined {
  const fields = new Map<string, FieldNode[]>();
  const visited = new Set<string>();
  const collect = (selectionSet: SelectionSetNode): boolean => {
    for (const selection of selectionSet.selections) {
      if (selection.directives?.length) return false;
      if (selection.kind === Kind.FIELD) {
        const key = selection.alias?.value ?? selection.name.value;
        const same = fields.get(key);
        if (same) same.push(selection);
        else fields.set(key, [selection]);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        if (selection.typeCondition && selection.typeCondition.name.value !== typeName) return false;
        if (!collect(selection.selectionSet)) return false;
      } else {
        const name = selection.name.value;
        if (visited.has(name)) continue;
        visited.add(name);
        const fragment = fragments.get(name);
        if (!fragment || fragment.typeCondition.name.value !== typeName || fragment.directives?.length) return false;
        if (!collect(fragment.selectionSet)) return false;
      }
    }
    return true;
  };
  for (const node of nodes) if (!node.selectionSet || !collect(node.selectionSet)) return undefined;
  return fields;
}

/**
 * The subscription, as the executor runs it (same source stream, same errors), but with each
 * event built by `build` once one has gone through the executor without errors, the final one excepted.
 */
export async function subscribeBuildingEvents(
  args: ExecutionArgs,
  build: EventBuilder,
): Promise<ExecutionResult | AsyncIterableIterator<ExecutionResult>> {
  const source = await createSourceEventStream(args);
  if (!isAsyncIterable(source)) return source;
  const events = (source as AsyncIterable<StreamEvent>)[Symbol.asyncIterator]();
  let readable = false;
  const executed = async (event: StreamEvent): Promise<IteratorResult<ExecutionResult>> => {
    try {
      const result = (await execute({ ...args, rootValue: event })) as ExecutionResult;
      if (!result.errors) readable = true;
      return { value: result, done: false };
    } catch (error) {
      // The stream ends with this error: its subscriber is let go, as the executor does.
      await events.return?.();
      throw error;
    }
  };
  const done = { value: undefined, done: true } as const;
  // Plain promise callbacks, not async functions: each event then costs one promise here, not several.
  const resultOf = (step: IteratorResult<StreamEvent>) => {
    if (step.done) return done;
    return readable && !step.value.done ? { value: { data: build(step.value) }, done: false } : executed(step.value);
  };
  const failed = (error: Error) => {
    // As the executor reports an error of the event stream itself.
    throw createGraphQLError(error.message, { originalError: error, nodes: [getOperationAST(args.document, args.operationName)!] });
  };
  const results: AsyncIterableIterator<ExecutionResult> = {
    next: () => events.next().then(resultOf, failed),
    return: async () => {
      await events.return?.();
      return done;
    },
    throw: async (error) => {
      await events.return?.();
      throw error;
    },
    [Symbol.asyncIterator]: () => results,
  };
  return results;
}
