import { randomUUID } from 'node:crypto';
import { print } from 'graphql';
import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { registerUser } from './helpers/accounts.js';
import { errorCodes, executeRaw, expectData, startTestApp, type TestApp } from './helpers/app.js';
import { SendMessageDocument } from './helpers/chat-documents.js';
import { LoginDocument } from './helpers/documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { followStream } from './helpers/ws.js';
import { skipping } from './helpers/skips.js';

const databaseUrl = inject('databaseUrl');
const redisUrl = process.env.REDIS_URL;

const wrongLogin = (t: TestApp, email: string) =>
  executeRaw(t, { query: print(LoginDocument), variables: { input: { email, password: 'not the password' } } });

describe.skipIf(skipping(!databaseUrl || !redisUrl, 'REDIS_KEY_PREFIX: needs DATABASE_URL and REDIS_URL (PostgreSQL and Redis)'))('REDIS_KEY_PREFIX', () => {
  it('keeps two deployments on one Redis apart: their rate limits and their streams', async () => {
    const upstream = await MockUpstream.start();
    const prefixA = `deploy-a-${randomUUID().slice(0, 8)}:`;
    const prefixB = `deploy-b-${randomUUID().slice(0, 8)}:`;
    const env = { ...upstream.env, REDIS_URL: redisUrl, RATE_LIMIT_LOGIN_PER_ACCOUNT: '3/10m' };
    const a = await startTestApp({ ...env, REDIS_KEY_PREFIX: prefixA });
    const b = await startTestApp({ ...env, REDIS_KEY_PREFIX: prefixB });
    const redis = new Redis(redisUrl!);
    try {
      const user = await registerUser(a);
      const onA = [];
      for (let attempt = 0; attempt < 4; attempt += 1) onA.push(errorCodes((await wrongLogin(a, user.email)) as never)[0]);
      expect(onA).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED', 'UNAUTHENTICATED', 'RATE_LIMITED']);
      // The same account on the other deployment has its own count.
      expect(errorCodes((await wrongLogin(b, user.email)) as never)).toEqual(['UNAUTHENTICATED']);

      const urlA = await a.app.start(0);
      const prompt = upstream.prompt({ content: 'kept under its own prefix' });
      const sent = expectData(await a.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken })).sendMessage;
      const events = await followStream(urlA, user.accessToken, sent.assistantMessage.id);
      expect(events.at(-1)?.done).toBe(true);
      const keysOf = async (prefix: string) => (await redis.keys(`${prefix}*`)).map((key) => key.slice(prefix.length).split(':')[0]);
      expect(new Set(await keysOf(prefixA))).toEqual(new Set(['ratelimit', 'replay']));
      expect(new Set(await keysOf(prefixB))).toEqual(new Set(['ratelimit']));
      // Channels are global across database numbers: each instance listens under its own prefix only.
      const channels = await redis.pubsub('CHANNELS', 'deploy-*');
      expect(channels.filter((c) => !String(c).startsWith(prefixA) && !String(c).startsWith(prefixB))).toEqual([]);
      expect(channels).toEqual(expect.arrayContaining([`${prefixA}stop-generation`, `${prefixB}stop-generation`]));
    } finally {
      const keys = [...(await redis.keys(`${prefixA}*`)), ...(await redis.keys(`${prefixB}*`))];
      if (keys.length) await redis.del(...keys);
      await redis.quit();
      await a.stop();
      await b.stop();
    }
  });
});
