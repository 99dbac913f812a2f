import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { print } from 'graphql';
import { describe, expect, it } from 'vitest';
import { registerUser } from './helpers/accounts.js';
import { errorCodes, executeRaw, expectData, serveWithUpstreamForFile, startTestApp, STRONG_PASSWORD, type TestApp } from './helpers/app.js';
import { SendMessageDocument, StopGenerationDocument } from './helpers/chat-documents.js';
import { LoginDocument, MeDocument } from './helpers/documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { skipping } from './helpers/skips.js';

// Most tests share one server with the default sign-in limits and tight limits elsewhere;
// each of them uses its own users and client addresses. Tests that need other limits start
// their own server, stopped at the end of the test.
let upstream: MockUpstream;
let t: TestApp;
serveWithUpstreamForFile((app, _url, mock) => ((t = app), (upstream = mock)), {
  RATE_LIMIT_LOGIN_PER_ACCOUNT: undefined,
  RATE_LIMIT_SEND_MESSAGE: '8/1m',
  MAX_CONCURRENT_GENERATIONS: '2',
});

const login = (t: TestApp, email: string, password: string, headers: Record<string, string> = {}) =>
  executeRaw(t, { query: print(LoginDocument), variables: { input: { email, password } } }, { headers });

const randomOctet = () => Math.floor(Math.random() * 250) + 1;

/** POSTs from a given local address (fetch cannot choose one); resolves with the status. */
function postFrom(localAddress: string, url: URL, body: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        hostname: '127.0.0.1',
        port: url.port,
        path: url.pathname,
        method: 'POST',
        localAddress,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
      },
      (response) => response.resume().on('end', () => resolve(response.statusCode ?? 0)),
    );
    request.once('error', reject);
    request.end(body);
  });
}

describe('rate limits', () => {
  it('refuses repeated wrong passwords for one account long before 50, with 429 and Retry-After', async () => {
    // The default per-account limit (10 per 15 minutes), not the suite's generous one.
    const user = await registerUser(t);
    const codes: unknown[] = [];
    for (let attempt = 0; attempt < 12; attempt += 1) {
      // Case and spaces do not make it another account.
      const email = attempt % 2 ? user.email.toUpperCase() : ` ${user.email}`;
      codes.push(errorCodes((await login(t, email, `wrong password ${attempt}`)) as never)[0]);
    }
    expect(codes.slice(0, 10)).toEqual(Array(10).fill('UNAUTHENTICATED'));
    expect(codes.slice(10)).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);

    const refused = await login(t, user.email, user.password);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfter });
  });

  it('counts a burst of concurrent calls exactly: no more than the limit get through', async () => {
    const user = await registerUser(t);
    const results = await Promise.all(Array.from({ length: 40 }, () => login(t, user.email, 'wrong password!')));
    const codes = results.map((r) => errorCodes(r as never)[0]);
    expect(codes.filter((c) => c === 'UNAUTHENTICATED')).toHaveLength(10);
    expect(codes.filter((c) => c === 'RATE_LIMITED')).toHaveLength(30);
  });

  it('limits sign-ins per client address, behind a trusted proxy', async () => {
    // Its own server: in-process requests of the whole suite share one (unknown) address.
    const proxied = await startTestApp({ RATE_LIMIT_AUTH_PER_IP: '3/10m', TRUST_PROXY_HOPS: '1' });
    const url = await proxied.app.start(0);
    const from = (ip: string) => (email: string) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': `203.0.113.7, ${ip}` },
        body: JSON.stringify({ query: print(LoginDocument), variables: { input: { email, password: 'not the password' } } }),
      });
    const attacker = from(`198.51.100.${Math.floor(Math.random() * 250) + 1}`);
    const statuses = [];
    for (let i = 0; i < 4; i += 1) statuses.push((await attacker(`nobody-${randomUUID()}@example.com`)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    // Someone else, behind the same proxy, is not affected.
    const other = await from(`192.0.2.${Math.floor(Math.random() * 250) + 1}`)(`nobody-${randomUUID()}@example.com`);
    expect(other.status).toBe(200);
  });

  it('counts a request whose X-Forwarded-For is shorter than the trusted hops against the socket address', async () => {
    // With two trusted proxies, a one-entry header cannot have come through both: the entry is
    // the client's own, and changing it on every request must not escape the limit. The requests
    // come from a loopback address of their own, so that the limit (in a shared Redis) is this test's.
    const proxied = await startTestApp({ RATE_LIMIT_AUTH_PER_IP: '3/10m', TRUST_PROXY_HOPS: '2' });
    const url = await proxied.app.start(0);
    const socketAddress = `127.${randomOctet()}.${randomOctet()}.${randomOctet()}`;
    const statuses = [];
    for (let i = 0; i < 4; i += 1) {
      const body = JSON.stringify({
        query: print(LoginDocument),
        variables: { input: { email: `nobody-${randomUUID()}@example.com`, password: 'not the password' } },
      });
      statuses.push(await postFrom(socketAddress, url, body, { 'x-forwarded-for': `203.0.113.${i + 1}` }));
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it('limits sendMessage per minute per user', async () => {
    const { accessToken: token } = await registerUser(t);
    const prompt = upstream.prompt({ content: 'hi' });
    const send = () => t.execute(SendMessageDocument, { input: { content: prompt, stream: false } }, { token });
    for (let i = 0; i < 8; i += 1) expectData(await send());
    const refused = await send();
    expect(errorCodes(refused)).toEqual(['RATE_LIMITED']);
    expect(refused.status).toBe(429);
    // Reads have their own, generous budget.
    expectData(await t.execute(MeDocument, undefined, { token }));
  });

  it('caps the generations a user runs at once', async () => {
    const { accessToken: token } = await registerUser(t);
    const prompt = upstream.prompt({ content: 'a b c d e f g h i j k l' }, { chunkSize: 1, latency: 200 });
    const sends = await Promise.all(
      Array.from({ length: 5 }, () => t.execute(SendMessageDocument, { input: { content: prompt, stream: true } }, { token })),
    );
    const accepted = sends.filter((r) => !r.errors);
    expect(accepted).toHaveLength(2);
    expect(sends.flatMap((r) => errorCodes(r))).toEqual(['RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED']);

    // Once one ends, there is room again.
    const first = accepted[0]!.data!.sendMessage.assistantMessage.id;
    expectData(await t.execute(StopGenerationDocument, { messageId: first }, { token }));
    expectData(await t.execute(SendMessageDocument, { input: { content: prompt, stream: true } }, { token }));
    for (const result of [accepted[1]!]) {
      await t.execute(StopGenerationDocument, { messageId: result.data!.sendMessage.assistantMessage.id }, { token });
    }
  });

  it('bounds password hashing, so a flood is refused at once instead of queueing ahead of real sign-ins', async () => {
    const hashing = await startTestApp({ PASSWORD_HASH_CONCURRENCY: '1', PASSWORD_HASH_QUEUE: '2' });
    const user = await registerUser(hashing);
    const flood = await Promise.all(
      Array.from({ length: 30 }, () => login(hashing, `nobody-${randomUUID()}@example.com`, 'guess guess guess')),
    );
    const codes = flood.map((r) => errorCodes(r as never)[0]);
    expect(codes.filter((c) => c === 'RATE_LIMITED').length).toBeGreaterThanOrEqual(20);
    expect(codes.filter((c) => c !== 'RATE_LIMITED').every((c) => c === 'UNAUTHENTICATED')).toBe(true);
    expectData(await hashing.execute(LoginDocument, { input: { email: user.email, password: STRONG_PASSWORD } }));
  });

  it('bounds password hashing per app: an app built later keeps its own limit and leaves the first one its own', async () => {
    const strict = await startTestApp({ PASSWORD_HASH_CONCURRENCY: '1', PASSWORD_HASH_QUEUE: '2' });
    const roomy = await startTestApp({ PASSWORD_HASH_CONCURRENCY: '2', PASSWORD_HASH_QUEUE: '100' });
    const flood = (app: TestApp) =>
      Promise.all(Array.from({ length: 30 }, () => login(app, `nobody-${randomUUID()}@example.com`, 'guess guess guess')));
    const codes = (results: Awaited<ReturnType<typeof flood>>) => results.map((r) => errorCodes(r as never)[0]);
    const [strictCodes, roomyCodes] = (await Promise.all([flood(strict), flood(roomy)])).map(codes) as [string[], string[]];
    expect(strictCodes.filter((c) => c === 'RATE_LIMITED').length).toBeGreaterThanOrEqual(20);
    expect(roomyCodes.every((c) => c === 'UNAUTHENTICATED')).toBe(true);
  });

  it.skipIf(skipping(!process.env.REDIS_URL, 'a limit shared by two instances: needs REDIS_URL'))('shares one limit between two instances on the same Redis', async () => {
    const env = { RATE_LIMIT_LOGIN_PER_ACCOUNT: '4/15m' };
    const [a, b] = [await startTestApp(env), await startTestApp(env)];
    const user = await registerUser(a);
    const codes = [];
    for (let i = 0; i < 6; i += 1) codes.push(errorCodes((await login(i % 2 ? b : a, user.email, 'wrong password!')) as never)[0]);
    expect(codes).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'RATE_LIMITED', 'RATE_LIMITED']);
  });
});
