import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueAccessToken } from '../src/auth/access-tokens.js';
import { decodeGlobalId } from '../src/global-id.js';
import { DeactivateUserDocument } from './helpers/admin-documents.js';
import { signUp } from './helpers/admin.js';
import { errorCodes, expectData, startTestApp, STRONG_PASSWORD, uniqueEmail, type TestApp } from './helpers/app.js';
import { SendMessageDocument } from './helpers/chat-documents.js';
import { CreateApiKeyDocument, MeDocument, RefreshDocument, UpdateProfileDocument } from './helpers/documents.js';
import { registerLeftover } from './helpers/leftovers.js';
import { captureLogs } from './helpers/logs.js';
import { startRedisServer } from './helpers/own-services.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';

/** A redis-server of this test's own (the shared one is never touched), with a client that changes its rules. */
async function startOwnRedis(): Promise<{ url: string; control: Redis }> {
  const server = await startRedisServer();
  const control = new Redis(server.url, { maxRetriesPerRequest: 0 });
  registerLeftover(() => control.disconnect());
  return { url: server.url, control };
}

const ADMIN = uniqueEmail('root');
const REPLY = Array.from({ length: 200 }, (_, i) => `w${i}`).join(' ');
const logs = captureLogs('info');
let upstream: MockUpstream;
let redis: { url: string; control: Redis };
let t: TestApp;
beforeAll(async () => {
  upstream = await MockUpstream.start();
  redis = await startOwnRedis();
  // Viewers cached for the whole test: only this instance's own eviction can refuse them.
  const env = { ...upstream.env, REDIS_URL: redis.url, ADMIN_EMAILS: ADMIN, AUTH_CACHE_TTL_MS: '60000' };
  t = await startTestApp(env, { logger: logs.logger });
});
afterAll(async () => {
  await t.stop();
  await upstream.stop();
});

const failedNotices = () => logs.entries().filter((e) => e.msg === 'could not announce a revocation; trying again in the background');

describe('when the revocation notice cannot be published', () => {
  it('a deactivation still succeeds, stops the running reply, and the credential is refused', async () => {
    const admin = await signUp(t, { email: ADMIN });
    const user = await signUp(t);
    const prompt = upstream.prompt({ content: REPLY }, { chunkSize: 1, latency: 50 }, 'deactivated');
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.token })).sendMessage;
    await upstream.waitForRequest(prompt);

    // From now on every PUBLISH on this Redis is refused (NOPERM); everything else works.
    await redis.control.call('ACL', 'SETUSER', 'default', '-publish');
    try {
      const before = failedNotices().length;
      const result = await t.execute(DeactivateUserDocument, { userId: user.id }, { token: admin.token });
      expect(result.errors).toBeUndefined();
      expect(result.data?.deactivateUser).toEqual({ id: user.id, active: false });
      expect(failedNotices().length).toBe(before + 1);

      const message = await t.app.db.prisma.message.findUniqueOrThrow({ where: { id: decodeGlobalId(sent.assistantMessage.id).id } });
      expect(message.status).toBe('STOPPED');
      const me = await t.execute(MeDocument, {}, { token: user.token });
      expect(errorCodes(me)).toEqual(['UNAUTHENTICATED']);
    } finally {
      await redis.control.call('ACL', 'SETUSER', 'default', '+publish');
    }
  });

  it('a password change still succeeds, and the sessions from before are refused', async () => {
    const user = await signUp(t);
    // Issued before the change's second (one from the same second is kept), and cached.
    const earlier = (await issueAccessToken(t.config.auth, user.userId, new Date(Date.now() - 5000))).token;
    expect(expectData(await t.execute(MeDocument, {}, { token: earlier })).me?.id).toBe(user.id);
    await redis.control.call('ACL', 'SETUSER', 'default', '-publish');
    try {
      const before = failedNotices().length;
      const input = { currentPassword: STRONG_PASSWORD, newPassword: 'another horse battery staple' };
      const result = await t.execute(UpdateProfileDocument, { input }, { token: user.token });
      expect(result.errors).toBeUndefined();
      expect(failedNotices().length).toBe(before + 1);
      expect(errorCodes(await t.execute(RefreshDocument, { refreshToken: user.refreshToken }))).toEqual(['UNAUTHENTICATED']);
      expect(errorCodes(await t.execute(MeDocument, {}, { token: earlier }))).toEqual(['UNAUTHENTICATED']);
    } finally {
      await redis.control.call('ACL', 'SETUSER', 'default', '+publish');
    }
  });
});

describe('when the channel was away', () => {
  it('forgets every cached viewer once it is back: notices published meanwhile were lost', async () => {
    const user = await signUp(t);
    const { secret, apiKey } = expectData(await t.execute(CreateApiKeyDocument, { input: { name: 'k' } }, { token: user.token })).createApiKey;
    expect(expectData(await t.execute(MeDocument, {}, { token: secret })).me?.id).toBe(user.id);
    // Revoked with no notice, as if it had been published while this instance's subscriber was away.
    await t.app.db.prisma.apiKey.update({ where: { id: decodeGlobalId(apiKey.id).id }, data: { revokedAt: new Date() } });
    expect(expectData(await t.execute(MeDocument, {}, { token: secret })).me?.id).toBe(user.id);

    await redis.control.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await waitFor('the cached key to be forgotten after the reconnection', async () => (await t.execute(MeDocument, {}, { token: secret })).status === 401);
  });
});
