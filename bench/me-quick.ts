import autocannon from 'autocannon';
import { graphql, startSwitchboard, startUpstream } from './harness.js';
const upstream = await startUpstream('unused', 8);
const server = await startSwitchboard(upstream.baseUrl, { RATE_LIMIT_OPERATIONS: '100000000/1m' });
const email = `me-${Date.now()}@example.com`;
const reg = await graphql<any>(server.url, 'mutation($i: RegisterInput!) { register(input: $i) { accessToken } }', { i: { email, password: 'correct horse battery staple', name: 'x' } });
const token = reg.register.accessToken;
const post = (query: string, t?: string) => ({ url: server.url.toString(), method: 'POST' as const, connections: 32, duration: Number(process.env.S ?? 4), workers: 1,
  headers: { 'content-type': 'application/json', ...(t ? { authorization: `Bearer ${t}` } : {}) }, body: JSON.stringify({ query }) });
for (const [name, opts] of [['typename', post('{ __typename }')], ['me', post('{ me { id email } }', token)]] as const) {
  const r = await autocannon(opts as any);
  console.log(name, Math.round(r.requests.average), 'req/s', r.non2xx, r.errors);
}
await server.stop(); await upstream.stop();
