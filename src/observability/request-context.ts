import { AsyncLocalStorage } from 'node:async_hooks';
import type { Plugin } from 'graphql-yoga';

/** What every log line and error report made while serving a request can know about it. */
export interface RequestContext {
  requestId: string;
  /** The signed-in user, once the operation's context is built. */
  userId?: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}

/** Runs `work`, and everything it starts, as part of the request `requestId`. */
export function runWithRequestId<T>(requestId: string, work: () => T): T {
  return storage.run({ requestId }, work);
}

/**
 * Runs a GraphQL operation as part of the request `requestId`. The events of a subscription
 * are pulled later by its transport (graphql-ws, from socket callbacks, outside any request),
 * so each step of its iterator runs in the request's context too.
 */
export async function runOperationWithRequestId<T>(requestId: string, operation: () => T | Promise<T>): Promise<T> {
  const context: RequestContext = { requestId };
  const result = await storage.run(context, operation);
  if (!isAsyncIterable(result)) return result;
  const iterator = result[Symbol.asyncIterator]();
  const inContext = <R>(step: () => Promise<R>) => storage.run(context, step);
  const bound: AsyncIterableIterator<unknown> = {
    next: () => inContext(() => iterator.next()),
    return: (value?: unknown) => inContext(() => iterator.return?.(value) ?? Promise.resolve({ done: true, value })),
    throw: (error?: unknown) => inContext(() => iterator.throw?.(error) ?? Promise.reject(error)),
    [Symbol.asyncIterator]: () => bound,
  };
  return bound as T;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator] === 'function';
}

/** Notes the signed-in user of each operation on its request context, for error reports. */
export function useRequestUser(): Plugin<{ viewer?: { id: string } | null }> {
  const note = ({ args }: { args: { contextValue: { viewer?: { id: string } | null } } }) => {
    const context = storage.getStore();
    if (context) context.userId = args.contextValue.viewer?.id;
  };
  return { onExecute: note, onSubscribe: note };
}
