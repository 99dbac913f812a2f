import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { issueAccessToken } from '../src/auth/access-tokens.js';
import type { Revocation } from '../src/auth/revocations.js';
import { createViewerCache } from '../src/auth/viewer-cache.js';
import type { Viewer } from '../src/auth/viewer.js';
import { decodeGlobalId } from '../src/global-id.js';
import { appendCreditEntry } from '../src/metering/credits.js';
import { AdminUsersDocument, DeactivateUserDocument, SetUserRoleDocument } from './helpers/admin-documents.js';
import { signUp } from './helpers/admin.js';
import { errorCodes, executeRaw, expectData, startTestApp, STRONG_PASSWORD, uniqueEmail, type TestApp } from './helpers/app.js';
import {
  CreateApiKeyDocument,
  LogoutEverywhereDocument,
  RevokeApiKeyDocument,
  UpdateProfileDocument,
} from './helpers/documents.js';
import { waitFor } from './helpers/wait.js';
import { skipping } from './helpers/skips.js';

// Long enough that within a test only an eviction or the credential's own expiry ends an entry.
const LONG_TTL_MS = '60000';
const ADMIN = uniqueEmail('root');

/** A test app whose SQL statements can be counted. */
async function countingApp(env: Record<string, string>) {
  const statements: string[] = [];
  const t = await startTestApp({ ADMIN_EMAILS: ADMIN, ...env }, { onQuery: (sql) => statements.push(sql) });
  /** The statements `run` caused on this app. */
  const count = async (run: () => Promise<unknown>) => {
    statements.length = 0;
    await run();
    return statements.length;
  };
  return { t, count };
}

/** `{ me { … } }` with identity fields only: what a cached viewer answers alone. */
async function me(t: TestApp, token: string, fields = 'id email') {
  const result = await executeRaw(t, { query: `{ me { ${fields} } }` }, { token });
  return { ...result, me: result.data?.me as Record<string, string> | null | undefined };
}
async function meEmail(t: TestApp, token: string) {
  const { errors, me: user } = await me(t, token);
  expect(errors).toBeUndefined();
  return user?.email;
}

async function expectRefused(t: TestApp, token: string) {
  const refused = await me(t, token);
  expect(refused.status).toBe(401);
  expect(refused.errors?.map((e) => e.extensions?.code)).toEqual(['UNAUTHENTICATED']);
}

/**
 * A token of the user issued a few seconds ago: signing out refuses tokens issued before its
 * second, not one from the same second (which may be the session signed in right after).
 */
async function earlierToken(t: TestApp, userId: string) {
  return (await issueAccessToken(t.config.auth, userId, new Date(Date.now() - 5000))).token;
}

async function createKey(t: TestApp, token: string, expiresAt?: Date) {
  const input = { name: 'k', expiresAt: expiresAt?.toISOString() };
  const { secret, apiKey } = expectData(await t.execute(CreateApiKeyDocument, { input }, { token })).createApiKey;
  return { secret, id: apiKey.id };
}

let cached: Awaited<ReturnType<typeof countingApp>>;
let uncached: Awaited<ReturnType<typeof countingApp>>;
let t: TestApp;
let admin: Awaited<ReturnType<typeof signUp>>;
beforeAll(async () => {
  cached = await countingApp({ AUTH_CACHE_TTL_MS: LONG_TTL_MS });
  uncached = await countingApp({ AUTH_CACHE_TTL_MS: '0' });
  t = cached.t;
  admin = await signUp(t, { email: ADMIN });
});
afterAll(async () => {
  await cached?.t.stop();
  await uncached?.t.stop();
});

describe('a cached viewer', () => {
  it('answers { me { id email } } without any SQL statement; with AUTH_CACHE_TTL_MS=0 every request reads one', async () => {
    const user = await signUp(t);
    expect(await meEmail(t, user.token)).toBe(user.email);
    expect(await cached.count(async () => expect(await meEmail(t, user.token)).toBe(user.email))).toBe(0);
    const key = await createKey(t, user.token);
    expect(await meEmail(t, key.secret)).toBe(user.email);
    expect(await cached.count(async () => expect(await meEmail(t, key.secret)).toBe(user.email))).toBe(0);

    const other = await signUp(uncached.t);
    expect(await meEmail(uncached.t, other.token)).toBe(other.email);
    expect(await uncached.count(async () => expect(await meEmail(uncached.t, other.token)).toBe(other.email))).toBe(1);
  });

  it('does not stop a forged or an expired token of the same user from being refused', async () => {
    const user = await signUp(t);
    await meEmail(t, user.token);
    const [header, payload, signature] = user.token.split('.') as [string, string, string];
    const flipped = signature[10] === 'A' ? 'B' : 'A';
    await expectRefused(t, `${header}.${payload}.${signature.slice(0, 10)}${flipped}${signature.slice(11)}`);
    const longAgo = new Date(Date.now() - t.config.auth.accessTokenTtlSeconds * 1000 - 60_000);
    await expectRefused(t, (await issueAccessToken(t.config.auth, user.userId, longAgo)).token);
    await expectRefused(t, 'sk_not-a-key-at-all');
    // The valid token is still served from the cache.
    expect(await cached.count(async () => expect(await meEmail(t, user.token)).toBe(user.email))).toBe(0);
  });

  it("ends at the access token's exp and at the API key's expiresAt, though the entry would live on", async () => {
    const user = await signUp(t);
    // A token whose exp is about two seconds away, and a key expiring then too.
    const issuedAt = new Date(Date.now() + 2000 - t.config.auth.accessTokenTtlSeconds * 1000);
    const { token, expiresAt } = await issueAccessToken(t.config.auth, user.userId, issuedAt);
    const keyExpiresAt = new Date(Date.now() + 2000);
    const key = await createKey(t, user.token, keyExpiresAt);
    expect(await meEmail(t, token)).toBe(user.email);
    expect(await meEmail(t, key.secret)).toBe(user.email);
    expect(await cached.count(() => meEmail(t, token))).toBe(0);
    expect(await cached.count(() => meEmail(t, key.secret))).toBe(0);

    await waitFor('the token and the key to expire', () => Date.now() >= Math.max(expiresAt.getTime(), keyExpiresAt.getTime()));
    await expectRefused(t, token);
    await expectRefused(t, key.secret);
  });

  it('is dropped at once when a key is revoked, the user deactivated, signed out everywhere or their password changed', async () => {
    const revokedKey = await signUp(t);
    const key = await createKey(t, revokedKey.token);
    await meEmail(t, key.secret);
    expectData(await t.execute(RevokeApiKeyDocument, { id: key.id }, { token: revokedKey.token }));
    await expectRefused(t, key.secret);

    const deactivated = await signUp(t);
    const deactivatedKey = await createKey(t, deactivated.token);
    await meEmail(t, deactivated.token);
    await meEmail(t, deactivatedKey.secret);
    expectData(await t.execute(DeactivateUserDocument, { userId: deactivated.id }, { token: admin.token }));
    await expectRefused(t, deactivated.token);
    await expectRefused(t, deactivatedKey.secret);

    const signedOut = await signUp(t);
    const session = await earlierToken(t, signedOut.userId);
    const keptKey = await createKey(t, signedOut.token);
    await meEmail(t, session);
    await meEmail(t, keptKey.secret);
    expectData(await t.execute(LogoutEverywhereDocument, {}, { token: signedOut.token }));
    await expectRefused(t, session);
    expect(await meEmail(t, keptKey.secret)).toBe(signedOut.email);

    const newPassword = await signUp(t);
    const oldSession = await earlierToken(t, newPassword.userId);
    await meEmail(t, oldSession);
    const input = { currentPassword: STRONG_PASSWORD, newPassword: 'another horse battery staple' };
    expectData(await t.execute(UpdateProfileDocument, { input }, { token: newPassword.token }));
    await expectRefused(t, oldSession);
  });

  it('shows a role or name change at once', async () => {
    const user = await signUp(t);
    const role = async () => (await me(t, user.token, 'role')).me?.role;
    expect(await role()).toBe('USER');
    expectData(await t.execute(SetUserRoleDocument, { input: { userId: user.id, role: 'ADMIN' } }, { token: admin.token }));
    expect(await role()).toBe('ADMIN');
    expectData(await t.execute(AdminUsersDocument, { first: 1 }, { token: user.token }));
    expectData(await t.execute(SetUserRoleDocument, { input: { userId: user.id, role: 'USER' } }, { token: admin.token }));
    expect(errorCodes(await t.execute(AdminUsersDocument, { first: 1 }, { token: user.token }))).toEqual(['FORBIDDEN']);

    expectData(await t.execute(UpdateProfileDocument, { input: { name: 'Renamed' } }, { token: user.token }));
    expect((await me(t, user.token, 'name')).me?.name).toBe('Renamed');
  });

  it('never answers credits or the plan from the cached row: a change the cache was not told about shows at once', async () => {
    const user = await signUp(t);
    // Plain scalars of credits, also behind fragments: the shapes a cached row could answer.
    const queries = [
      '{ me { id credits { balanceMicros } } }',
      'query { me { ...Who } } fragment Who on User { email ... on User { credits { balanceMicros } } }',
    ];
    const balances = async () =>
      Promise.all(
        queries.map(async (query) => {
          const result = await executeRaw(t, { query }, { token: user.token });
          expect(result.errors).toBeUndefined();
          return (result.data?.me as { credits: { balanceMicros: number } }).credits.balanceMicros;
        }),
      );
    const [before] = await balances();
    expect(await cached.count(() => meEmail(t, user.token))).toBe(0);
    await t.app.db.prisma.$transaction((tx) =>
      appendCreditEntry(tx, { userId: user.userId, kind: 'ADJUSTMENT', amountMicros: 1234n, reason: 'behind the cache' }),
    );
    expect(await balances()).toEqual([before! + 1234, before! + 1234]);

    // The plan is billing state too (a Stripe event changes it without a notice).
    await t.app.db.prisma.user.update({ where: { id: user.userId }, data: { plan: 'PRO' } });
    expect((await me(t, user.token, 'id plan')).me?.plan).toBe('PRO');
  });
});

describe('the bound', () => {
  it('a revocation no notice told of is refused within AUTH_CACHE_TTL_MS', async () => {
    const ttlMs = 300;
    const short = await startTestApp({ AUTH_CACHE_TTL_MS: String(ttlMs) });
    try {
      const user = await signUp(short);
      const key = await createKey(short, user.token);
      await meEmail(short, key.secret);
      // Written behind the server's back: no notice, as when one is lost.
      const revokedAt = Date.now();
      await short.app.db.prisma.apiKey.update({ where: { id: decodeGlobalId(key.id).id }, data: { revokedAt: new Date() } });
      await waitFor('the revoked key to be refused', async () => (await me(short, key.secret)).status === 401);
      // A bound on a real clock: generous headroom for a busy machine.
      expect(Date.now() - revokedAt).toBeLessThan(ttlMs + 2000);
    } finally {
      await short.stop();
    }
  });

  it('the cache holds at most AUTH_CACHE_MAX_ENTRIES viewers, and refused credentials take no room', async () => {
    const small = await countingApp({ AUTH_CACHE_TTL_MS: LONG_TTL_MS, AUTH_CACHE_MAX_ENTRIES: '2' });
    try {
      const [first, second, third] = [await signUp(small.t), await signUp(small.t), await signUp(small.t)];
      for (const user of [first, second, third]) await meEmail(small.t, user.token);
      for (let i = 0; i < 5; i += 1) await expectRefused(small.t, `sk_forged-${i}`);
      expect(await small.count(() => meEmail(small.t, third.token))).toBe(0);
      expect(await small.count(() => meEmail(small.t, second.token))).toBe(0);
      // The least recently used one made room for the third.
      expect(await small.count(() => meEmail(small.t, first.token))).toBe(1);
    } finally {
      await small.t.stop();
    }
  });
});

describe('the cache itself', () => {
  const viewer = { id: 'u1', role: 'USER', via: 'api_key', apiKeyId: 'k1', user: {} } as unknown as Viewer;

  it('keeps out a viewer whose authentication was under way when a notice arrived: it may have read the rows before the change', () => {
    const cache = createViewerCache({ ttlMs: 60_000, maxEntries: 10 });
    const before = cache.generation();
    cache.evict({ kind: 'apiKey', apiKeyId: 'k1' });
    cache.set('sk_x', viewer, null, before);
    expect(cache.get('sk_x')).toBeUndefined();
    cache.set('sk_x', viewer, null, cache.generation());
    expect(cache.get('sk_x')).toBe(viewer);
  });

  it("stops at the TTL or at the credential's expiry, whichever comes first", () => {
    let now = 1_000;
    const cache = createViewerCache({ ttlMs: 500, maxEntries: 10, now: () => now });
    cache.set('a', viewer, null, cache.generation());
    cache.set('b', viewer, 1_200, cache.generation());
    now = 1_199;
    expect([cache.get('a'), cache.get('b')]).toEqual([viewer, viewer]);
    now = 1_200;
    expect([cache.get('a'), cache.get('b')]).toEqual([viewer, undefined]);
    now = 1_500;
    expect(cache.get('a')).toBeUndefined();
  });
});

// Two instances share notices only through Redis, and rows only through PostgreSQL.
const clustered = Boolean(inject('databaseUrl') && process.env.REDIS_URL);

describe.skipIf(skipping(!clustered, 'the viewer cache under two instances: needs DATABASE_URL and REDIS_URL (PostgreSQL and Redis)'))('two instances on one PostgreSQL and one Redis', () => {
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    // Both on this file's Redis key prefix, so they hear each other (as t does).
    a = await startTestApp({ AUTH_CACHE_TTL_MS: LONG_TTL_MS });
    b = await startTestApp({ AUTH_CACHE_TTL_MS: LONG_TTL_MS });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  /** Listens on B; `arrived` resolves once B has heard a notice that `matches`. */
  async function listenOnB(matches: (revocation: Revocation) => boolean) {
    let heard!: () => void;
    const arrived = new Promise<void>((resolve) => (heard = resolve));
    const stop = await b.app.services.revocations.onRevoked((revocation) => {
      if (matches(revocation)) heard();
    });
    return { arrived: arrived.finally(stop) };
  }

  it('a key revoked, a user deactivated, sessions ended or a role changed on A is refused or seen by B at once', async () => {
    // Rows are shared: the admin signed up on t is one on A too.
    const owner = await signUp(a);
    const key = await createKey(a, owner.token);
    await meEmail(b, key.secret);
    let notice = await listenOnB((r) => r.kind === 'apiKey');
    expectData(await a.execute(RevokeApiKeyDocument, { id: key.id }, { token: owner.token }));
    await notice.arrived;
    await expectRefused(b, key.secret);

    const deactivated = await signUp(a);
    await meEmail(b, deactivated.token);
    notice = await listenOnB((r) => r.kind === 'user');
    expectData(await a.execute(DeactivateUserDocument, { userId: deactivated.id }, { token: admin.token }));
    await notice.arrived;
    await expectRefused(b, deactivated.token);

    const signedOut = await signUp(a);
    const session = await earlierToken(a, signedOut.userId);
    await meEmail(b, session);
    notice = await listenOnB((r) => r.kind === 'sessions');
    expectData(await a.execute(LogoutEverywhereDocument, {}, { token: signedOut.token }));
    await notice.arrived;
    await expectRefused(b, session);

    const promoted = await signUp(a);
    expect((await me(b, promoted.token, 'role')).me?.role).toBe('USER');
    notice = await listenOnB((r) => r.kind === 'userChanged');
    expectData(await a.execute(SetUserRoleDocument, { input: { userId: promoted.id, role: 'ADMIN' } }, { token: admin.token }));
    await notice.arrived;
    expect((await me(b, promoted.token, 'role')).me?.role).toBe('ADMIN');
  });

  it('with the bus cut, B refuses a key revoked on A within AUTH_CACHE_TTL_MS', async () => {
    const ttlMs = 300;
    // Another key prefix: C hears none of A's notices, as if every one of them were lost.
    const c = await startTestApp({ AUTH_CACHE_TTL_MS: String(ttlMs), REDIS_KEY_PREFIX: `${a.config.redisKeyPrefix}cut:` });
    try {
      const owner = await signUp(a);
      const key = await createKey(a, owner.token);
      await meEmail(c, key.secret);
      const revokedAt = Date.now();
      expectData(await a.execute(RevokeApiKeyDocument, { id: key.id }, { token: owner.token }));
      await waitFor('the revoked key to be refused on C', async () => (await me(c, key.secret)).status === 401);
      expect(Date.now() - revokedAt).toBeLessThan(ttlMs + 2000);
    } finally {
      await c.stop();
    }
  });
});
