import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';

/**
 * A `fetch` for the provider SDKs, on node:http. A streamed answer (2xx, `text/event-stream`) is
 * handed over as its Node stream (`streamedBodyOf`) rather than through the web streams of the
 * built-in fetch, which cost about half again as much CPU for each chunk relayed. Every other
 * answer (errors, JSON) is read whole into a plain Response, as the SDKs expect. Requests it does
 * not handle (a body that is not text, say) go to the built-in fetch.
 */
export function createNodeHttpFetch(): typeof fetch {
  // Idle connections are reused, and closed after a while on their own: servers close theirs too
  // (Node's after 5 s), and a request sent on a socket the server is closing would fail.
  const agents = {
    'http:': new http.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS }),
    'https:': new https.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS }),
  };
  return async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    const body = init.body;
    if (input instanceof Request || !(url.protocol in agents) || (body != null && typeof body !== 'string')) {
      return fetch(input, init);
    }
    const signal = init.signal ?? undefined;
    signal?.throwIfAborted();
    const client = url.protocol === 'https:' ? https : http;
    const answer = await new Promise<IncomingMessage>((resolve, reject) => {
      const request = client.request(url, {
        method: init.method ?? 'GET',
        headers: Object.fromEntries(new Headers(init.headers)),
        agent: agents[url.protocol as keyof typeof agents],
        signal,
      });
      request.once('response', resolve);
      request.once('error', reject);
      request.end(body ?? undefined);
    });
    if (signal) {
      // As the built-in fetch does: an abort while the body is read ends it with an AbortError.
      const abort = () => answer.destroy(signal.reason instanceof Error ? signal.reason : new DOMException('This operation was aborted', 'AbortError'));
      signal.addEventListener('abort', abort, { once: true });
      answer.once('close', () => signal.removeEventListener('abort', abort));
    }
    const headers = headersOf(answer);
    const status = answer.statusCode ?? 0;
    const responseInit = { status, statusText: answer.statusMessage ?? '', headers };
    if (status >= 200 && status < 300 && headers.get('content-type')?.startsWith('text/event-stream')) {
      const response = new Response(null, responseInit);
      streamedBodies.set(response, answer);
      return response;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of answer) chunks.push(chunk as Buffer);
    return new Response(NO_BODY_STATUSES.has(status) ? null : Buffer.concat(chunks), responseInit);
  };
}

const IDLE_SOCKET_MS = 4_000;
const NO_BODY_STATUSES = new Set([101, 204, 205, 304]);
const streamedBodies = new WeakMap<Response, Readable>();

/** The Node stream of a streamed answer from `createNodeHttpFetch`; undefined for any other Response. */
export function streamedBodyOf(response: Response): Readable | undefined {
  return streamedBodies.get(response);
}

function headersOf(answer: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  return headers;
}
