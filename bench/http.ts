import autocannon from 'autocannon';
import { graphql } from './harness.js';

export interface HttpResult {
  name: string;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

const DURATION_SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = 32;

async function load(name: string, options: autocannon.Options): Promise<HttpResult> {
  // One worker thread: the load generator gets its own event loop (and core) beside the bench's.
  const result = await autocannon({ connections: CONNECTIONS, duration: DURATION_SECONDS, workers: 1, ...options });
  // A run with errors or non-2xx answers measured the error path, not the scenario.
  if (result.errors > 0 || result.non2xx > 0) {
    throw new Error(`${name}: ${result.errors} errors, ${result.non2xx} non-2xx responses`);
  }
  return { name, requestsPerSecond: result.requests.average, p50Ms: result.latency.p50, p99Ms: result.latency.p99 };
}

const post = (url: URL, query: string, token?: string): autocannon.Options => ({
  url: url.toString(),
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  body: JSON.stringify({ query }),
});

/**
 * What each layer of a GraphQL request costs: the bare HTTP route, the GraphQL pipeline, the two
 * ways of authenticating, and a nested read of conversations with counts.
 */
export async function benchHttp(url: URL, user: { accessToken: string; apiKey: string }): Promise<HttpResult[]> {
  for (let i = 0; i < 20; i += 1) {
    await graphql(url, 'mutation { createConversation(input: { title: "bench" }) { id } }', {}, user.accessToken);
  }
  return [
    await load('GET /health (HTTP baseline)', { url: new URL('/health', url).toString() }),
    await load('{ __typename } anonymous', post(url, '{ __typename }')),
    await load('{ me { id email } } with an access token', post(url, '{ me { id email } }', user.accessToken)),
    await load('{ me { id email } } with an API key', post(url, '{ me { id email } }', user.apiKey)),
    await load(
      'me.conversations(first: 20) with messageCount',
      post(url, '{ me { conversations(first: 20) { edges { node { id title messageCount } } } } }', user.accessToken),
    ),
  ];
}
