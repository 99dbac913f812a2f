import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { streamedBodyOf } from './node-http-fetch.js';

/**
 * The events of an SSE body, as the bytes arrive. The body is read and parsed directly, without
 * a pipeline of web streams: a relayed chunk is then one read, one decode and one parse. A body
 * read with node:http (see node-http-fetch.ts) is read as the Node stream it is.
 */
export async function* serverSentEvents(response: Response): AsyncGenerator<EventSourceMessage> {
  const parsed: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => parsed.push(event) });
  const streamed = streamedBodyOf(response);
  if (streamed) {
    streamed.setEncoding('utf8');
    try {
      for await (const text of streamed) {
        parser.feed(text as string);
        yield* parsed.splice(0);
      }
    } finally {
      // Left early ([DONE], or an error): the rest of the body is not wanted, and its connection is freed.
      streamed.destroy();
    }
    return;
  }
  if (!response.body) return;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      parser.feed(done ? decoder.decode() : decoder.decode(value, { stream: true }));
      yield* parsed.splice(0);
      if (done) return;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}
