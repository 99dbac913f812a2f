import { print } from 'graphql';
import type { ToolMessageStreamSubscription } from '../generated/graphql.js';
import { ToolMessageStreamDocument } from './tool-documents.js';
import { followStream } from './ws.js';

export type ToolStreamEvent = ToolMessageStreamSubscription['messageStream'];

/** Follows a reply to its end over graphql-ws, tool-call deltas included. */
export function followToolStreamOverWs(url: URL, token: string, messageId: string): Promise<ToolStreamEvent[]> {
  return followStream(url, token, messageId, undefined, ToolMessageStreamDocument);
}

/** Follows a reply to its end over server-sent events (Yoga's SSE transport). */
export async function followToolStreamOverSse(url: URL, token: string, messageId: string): Promise<ToolStreamEvent[]> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: print(ToolMessageStreamDocument), variables: { messageId } }),
  });
  if (!response.headers.get('content-type')?.includes('text/event-stream')) throw new Error(`not an event stream: ${response.status}`);
  const body = await response.text();
  return body
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => JSON.parse(line.slice(6)) as { data?: ToolMessageStreamSubscription; errors?: unknown })
    .map((payload) => {
      if (payload.errors) throw new Error(`messageStream errors: ${JSON.stringify(payload.errors)}`);
      return payload.data?.messageStream;
    })
    .filter((event) => event !== undefined);
}

/**
 * The tool calls a subscriber puts together from the deltas it received (a reset starting
 * them anew), as the README tells clients to.
 */
export function toolCallsFromDeltas(events: ToolStreamEvent[]): Array<{ id: string; name: string; arguments: string }> {
  let calls: Array<{ id: string; name: string; arguments: string }> = [];
  for (const event of events) {
    if (event.reset) calls = [];
    for (const delta of event.toolCallDeltas) {
      const call = (calls[delta.index] ??= { id: '', name: '', arguments: '' });
      if (delta.id) call.id = delta.id;
      if (delta.name) call.name = delta.name;
      call.arguments += delta.argumentsDelta;
    }
  }
  return calls;
}
