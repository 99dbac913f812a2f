import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type ExecutionResult } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { MessageStreamSubscription } from '../generated/graphql.js';
import { MessageStreamDocument } from './chat-documents.js';
import { registerLeftover } from './leftovers.js';

export function wsUrl(httpUrl: URL): string {
  return httpUrl.toString().replace(/^http/, 'ws');
}

/**
 * The official graphql-ws client over a real socket; lazy: false so connection errors surface.
 * Disposed at the end of the test that opened it, unless the test does it first.
 */
export function connectWs(httpUrl: URL, token?: string): Client & { closed: Promise<{ code: number; reason: string }> } {
  let onClosed: (event: { code: number; reason: string }) => void = () => {};
  const closed = new Promise<{ code: number; reason: string }>((resolve) => (onClosed = resolve));
  const client = createClient({
    url: wsUrl(httpUrl),
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    on: { closed: (event) => onClosed(event as { code: number; reason: string }) },
    onNonLazyError: () => {},
  });
  const disposeClient = client.dispose;
  return Object.assign(client, { closed, dispose: registerLeftover(() => disposeClient()) });
}

/** Runs a single-result operation over graphql-ws. */
export function wsExecute<R, V>(client: Client, document: TypedDocumentNode<R, V>, variables?: V): Promise<ExecutionResult<R>> {
  return new Promise((resolve, reject) => {
    let result: ExecutionResult<R> | undefined;
    client.subscribe<R>(
      { query: print(document), variables: variables as Record<string, unknown> },
      {
        next: (value) => (result = value as ExecutionResult<R>),
        error: reject,
        complete: () => (result ? resolve(result) : reject(new Error('completed without a result'))),
      },
    );
  });
}

/** What a messageStream subscription yields (the MessageStream document, loosely typed). */
export type MessageStreamEvent = MessageStreamSubscription['messageStream'];

/**
 * Follows a message's stream over its own graphql-ws connection to the end (or until `until`
 * says enough) and returns the events; an error result fails the caller.
 */
export async function followStream<Event = MessageStreamEvent>(
  httpUrl: URL,
  token: string,
  messageId: string,
  until: (events: Event[]) => boolean = () => false,
  /** The subscription document, when a test selects more than the common event fields. */
  document: TypedDocumentNode<{ messageStream: Event }, { messageId: string }> = MessageStreamDocument as never,
): Promise<Event[]> {
  const client = connectWs(httpUrl, token);
  const events: Event[] = [];
  try {
    for await (const result of client.iterate({ query: print(document), variables: { messageId } })) {
      if (result.errors?.length) throw new Error(`messageStream errors: ${JSON.stringify(result.errors)}`);
      events.push((result.data as { messageStream: Event }).messageStream);
      if (until(events)) break;
    }
  } finally {
    await client.dispose();
  }
  return events;
}
