import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueAccessToken } from '../src/auth/access-tokens.js';
import { decodeGlobalId } from '../src/global-id.js';
import {
  errorCodes,
  expectData,
  startTestApp,
  STRONG_PASSWORD,
  testDatabase,
  uniqueEmail,
  type TestApp,
} from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { SendMessageDocument } from './helpers/chat-documents.js';
import {
  CreateApiKeyDocument,
  LoginDocument,
  LogoutDocument,
  LogoutEverywhereDocument,
  MeDocument,
  MyApiKeysDocument,
  RefreshDocument,
  RegisterDocument,
  RevokeApiKeyDocument,
  UpdateProfileDocument,
} from './helpers/documents.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

/** An access token for the user as if issued a second ago, before anything the test does next. */
async function accessTokenIssuedEarlier(userGlobalId: string): Promise<string> {
  const { id } = decodeGlobalId(userGlobalId);
  return (await issueAccessToken(t.config.auth, id, new Date(Date.now() - 1000))).token;
}

/**
 * Sends `count` copies of a request at once. On PostgreSQL, another connection holds the user's
 * row locked until each request has finished or waits for a lock. Inserting a refresh token
 * waits for that lock (its foreign key) and updating one does not: a rotation that marks its
 * token used and inserts the next one in separate steps lets the losers revoke the family
 * before the winner's new token exists.
 */
async function concurrentlyWithUserRowLocked<T>(userGlobalId: string, count: number, request: () => Promise<T>): Promise<T[]> {
  const database = testDatabase();
  if (database.kind !== 'postgres') return Promise.all(Array.from({ length: count }, request));
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT 1 FROM "User" WHERE "id" = $1 FOR UPDATE', [decodeGlobalId(userGlobalId).id]);
    let settled = 0;
    const pending = Promise.all(Array.from({ length: count }, () => request().finally(() => (settled += 1))));
    for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
      // pg_stat_activity is read once per transaction unless its snapshot is cleared. Lock
      // waiters of other test files only end the hold sooner, never fail this test.
      await client.query('SELECT pg_stat_clear_snapshot()');
      const { rows } = await client.query(
        "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
      );
      if (settled + rows[0].waiting >= count) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await client.query('COMMIT');
    return await pending;
  } finally {
    await client.end();
  }
}

describe('HTTP status of authentication errors', () => {
  it('answers a bad credential with HTTP 401', async () => {
    const result = await t.execute(MeDocument, {}, { token: 'not.a.jwt' });
    expect(errorCodes(result)).toEqual(['UNAUTHENTICATED']);
    expect(result.status).toBe(401);
  });

  it('answers a missing sign-in and a failed login or refresh with UNAUTHENTICATED, not HTTP 401', async () => {
    const user = await registerUser(t);
    const results = {
      anonymousSend: await t.execute(SendMessageDocument, { input: { content: 'Hi' } }),
      anonymousCreateKey: await t.execute(CreateApiKeyDocument, { input: { name: 'k' } }),
      wrongPassword: await t.execute(LoginDocument, { input: { email: user.email, password: 'wrong password!!' } }),
      unknownRefreshToken: await t.execute(RefreshDocument, { refreshToken: 'rt_unknown' }),
    };
    for (const result of Object.values(results)) {
      expect(errorCodes(result)).toEqual(['UNAUTHENTICATED']);
      expect(result.status).toBe(200);
    }
  });
});

describe('register, login and me', () => {
  it('signs up, logs in and reads me with the access token, then with an API key', async () => {
    const email = uniqueEmail('Flow');
    const registered = expectData(
      await t.execute(RegisterDocument, { input: { email, password: STRONG_PASSWORD, name: '  Ada   Lovelace ' } }),
    ).register;
    expect(registered.user).toMatchObject({ email: email.toLowerCase(), name: 'Ada Lovelace', role: 'USER' });
    expect(new Date(registered.expiresAt).getTime()).toBeGreaterThan(Date.now());

    const login = expectData(await t.execute(LoginDocument, { input: { email: email.toUpperCase(), password: STRONG_PASSWORD } })).login;
    const me = expectData(await t.execute(MeDocument, {}, { token: login.accessToken })).me;
    expect(me).toMatchObject({ id: registered.user.id, email: email.toLowerCase(), plan: 'FREE' });

    // Listing keys is an account read: the key needs ACCOUNT as well as READ.
    const input = { name: 'ci', scopes: ['READ' as const, 'ACCOUNT' as const] };
    const created = expectData(await t.execute(CreateApiKeyDocument, { input }, { token: login.accessToken })).createApiKey;
    expect(created.secret).toMatch(/^sk_[\w-]{43}$/);
    expect(created.secret.startsWith(created.apiKey.prefix)).toBe(true);

    const viaKey = expectData(await t.execute(MeDocument, {}, { token: created.secret })).me;
    expect(viaKey?.id).toBe(registered.user.id);
    const keys = expectData(await t.execute(MyApiKeysDocument, {}, { token: created.secret })).me?.apiKeys;
    expect(keys?.totalCount).toBe(1);
    expect(keys?.edges[0]?.node.lastUsedAt).not.toBeNull();
  });

  it('returns null for me when anonymous', async () => {
    expect(expectData(await t.execute(MeDocument)).me).toBeNull();
  });

  it('refuses a duplicate email regardless of case, and writes nothing', async () => {
    const user = await registerUser(t);
    const again = await t.execute(RegisterDocument, {
      input: { email: user.email.toUpperCase(), password: STRONG_PASSWORD, name: 'Copy' },
    });
    expect(errorCodes(again)).toEqual(['BAD_USER_INPUT']);
    expect(again.errors?.[0]?.extensions?.field).toBe('email');
    expect(await t.app.db.prisma.user.count({ where: { email: user.email } })).toBe(1);
  });

  it.each([
    ['malformed email', { email: 'not-an-email', password: STRONG_PASSWORD, name: 'X' }, 'email'],
    ['short password', { email: uniqueEmail(), password: 'short', name: 'X' }, 'password'],
    ['common password', { email: uniqueEmail(), password: 'password123', name: 'X' }, 'password'],
    ['repetitive password', { email: uniqueEmail(), password: 'aaaaaaaaaaaaaaaa', name: 'X' }, 'password'],
    ['oversized password', { email: uniqueEmail(), password: 'x1y2z3'.repeat(60), name: 'X' }, 'password'],
    ['empty name', { email: uniqueEmail(), password: STRONG_PASSWORD, name: '   ' }, 'name'],
  ])('rejects a %s with BAD_USER_INPUT and creates no user', async (_label, input, field) => {
    const result = await t.execute(RegisterDocument, { input });
    expect(errorCodes(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors?.[0]?.extensions?.field).toBe(field);
    expect(await t.app.db.prisma.user.count({ where: { email: input.email.toLowerCase() } })).toBe(0);
  });

  it('gives the same error for a wrong password and an unknown email', async () => {
    const user = await registerUser(t);
    const wrongPassword = await t.execute(LoginDocument, { input: { email: user.email, password: 'wrong password!!' } });
    const unknownEmail = await t.execute(LoginDocument, { input: { email: uniqueEmail(), password: STRONG_PASSWORD } });
    expect(errorCodes(wrongPassword)).toEqual(['UNAUTHENTICATED']);
    expect(wrongPassword.errors?.[0]?.message).toBe(unknownEmail.errors?.[0]?.message);
    expect(errorCodes(unknownEmail)).toEqual(['UNAUTHENTICATED']);
  });
});

describe('refresh tokens', () => {
  it('rotates: a refresh token works once and yields a new pair', async () => {
    const user = await registerUser(t);
    const first = expectData(await t.execute(RefreshDocument, { refreshToken: user.refreshToken })).refreshToken;
    expect(first.refreshToken).not.toBe(user.refreshToken);
    expect(first.user.id).toBe(user.user.id);
    const me = expectData(await t.execute(MeDocument, {}, { token: first.accessToken })).me;
    expect(me?.id).toBe(user.user.id);
  });

  it('revokes the whole family when an already-used refresh token is presented again', async () => {
    const user = await registerUser(t);
    const rotated = expectData(await t.execute(RefreshDocument, { refreshToken: user.refreshToken })).refreshToken;
    const reuse = await t.execute(RefreshDocument, { refreshToken: user.refreshToken });
    expect(errorCodes(reuse)).toEqual(['UNAUTHENTICATED']);
    // The legitimate-looking newer token is now dead too.
    const afterTheft = await t.execute(RefreshDocument, { refreshToken: rotated.refreshToken });
    expect(errorCodes(afterTheft)).toEqual(['UNAUTHENTICATED']);
  });

  it('lets one of ten concurrent uses of a token win, then revokes the family with the winner\'s new token', async () => {
    const user = await registerUser(t);
    const results = await concurrentlyWithUserRowLocked(user.user.id, 10, () =>
      t.execute(RefreshDocument, { refreshToken: user.refreshToken }),
    );
    const winners = results.filter((r) => !r.errors);
    expect(winners).toHaveLength(1);
    expect(results.filter((r) => r.errors).map((r) => errorCodes(r))).toEqual(Array(9).fill(['UNAUTHENTICATED']));

    const winnersToken = expectData(winners[0]!).refreshToken.refreshToken;
    expect(errorCodes(await t.execute(RefreshDocument, { refreshToken: winnersToken }))).toEqual(['UNAUTHENTICATED']);
    const family = await t.app.db.prisma.refreshToken.findMany({ where: { user: { email: user.email } } });
    expect(family).toHaveLength(2);
    expect(family.filter((token) => token.revokedAt === null)).toEqual([]);
  });

  it('logout revokes the session; unknown tokens give false', async () => {
    const user = await registerUser(t);
    expect(expectData(await t.execute(LogoutDocument, { refreshToken: user.refreshToken })).logout).toBe(true);
    expect(errorCodes(await t.execute(RefreshDocument, { refreshToken: user.refreshToken }))).toEqual(['UNAUTHENTICATED']);
    expect(expectData(await t.execute(LogoutDocument, { refreshToken: 'rt_unknown' })).logout).toBe(false);
  });
});

describe('profile', () => {
  it('renames, and changes the password only with the current one', async () => {
    const user = await registerUser(t);
    const renamed = expectData(await t.execute(UpdateProfileDocument, { input: { name: 'New Name' } }, { token: user.accessToken }));
    expect(renamed.updateProfile.name).toBe('New Name');

    const wrong = await t.execute(
      UpdateProfileDocument,
      { input: { currentPassword: 'not the password', newPassword: 'another strong secret' } },
      { token: user.accessToken },
    );
    expect(errorCodes(wrong)).toEqual(['FORBIDDEN']);

    expectData(
      await t.execute(
        UpdateProfileDocument,
        { input: { currentPassword: STRONG_PASSWORD, newPassword: 'another strong secret' } },
        { token: user.accessToken },
      ),
    );
    expect(errorCodes(await t.execute(LoginDocument, { input: { email: user.email, password: STRONG_PASSWORD } }))).toEqual([
      'UNAUTHENTICATED',
    ]);
    expectData(await t.execute(LoginDocument, { input: { email: user.email, password: 'another strong secret' } }));
    // Changing the password ended the other sessions.
    expect(errorCodes(await t.execute(RefreshDocument, { refreshToken: user.refreshToken }))).toEqual(['UNAUTHENTICATED']);
  });

  it('ends the access tokens issued before a password change', async () => {
    const user = await registerUser(t);
    const earlier = await accessTokenIssuedEarlier(user.user.id);
    expectData(await t.execute(MeDocument, {}, { token: earlier }));
    expectData(
      await t.execute(
        UpdateProfileDocument,
        { input: { currentPassword: STRONG_PASSWORD, newPassword: 'another strong secret' } },
        { token: user.accessToken },
      ),
    );
    const afterwards = await t.execute(MeDocument, {}, { token: earlier });
    expect(errorCodes(afterwards)).toEqual(['UNAUTHENTICATED']);
    expect(afterwards.status).toBe(401);
  });

  it('requires authentication', async () => {
    const result = await t.execute(UpdateProfileDocument, { input: { name: 'x' } });
    expect(errorCodes(result)).toEqual(['UNAUTHENTICATED']);
  });
});

describe('logoutEverywhere', () => {
  it('revokes every refresh token and the access tokens issued before, but not a session started right after', async () => {
    const user = await registerUser(t);
    const otherDevice = expectData(await t.execute(LoginDocument, { input: { email: user.email, password: STRONG_PASSWORD } })).login;
    const earlier = await accessTokenIssuedEarlier(user.user.id);

    expect(expectData(await t.execute(LogoutEverywhereDocument, {}, { token: user.accessToken })).logoutEverywhere).toBe(true);

    for (const refreshToken of [user.refreshToken, otherDevice.refreshToken]) {
      expect(errorCodes(await t.execute(RefreshDocument, { refreshToken }))).toEqual(['UNAUTHENTICATED']);
    }
    const withEarlier = await t.execute(MeDocument, {}, { token: earlier });
    expect(errorCodes(withEarlier)).toEqual(['UNAUTHENTICATED']);
    expect(withEarlier.status).toBe(401);
    // Most likely within the same second as the logout: iat's whole seconds must not refuse it.
    const fresh = expectData(await t.execute(LoginDocument, { input: { email: user.email, password: STRONG_PASSWORD } })).login;
    expect(expectData(await t.execute(MeDocument, {}, { token: fresh.accessToken })).me?.id).toBe(user.user.id);
  });

  it('requires a signed-in user', async () => {
    const result = await t.execute(LogoutEverywhereDocument);
    expect(errorCodes(result)).toEqual(['UNAUTHENTICATED']);
  });
});

describe('API keys', () => {
  it('stores only a hash of the secret', async () => {
    const user = await registerUser(t);
    const { secret } = expectData(await t.execute(CreateApiKeyDocument, { input: { name: 'k' } }, { token: user.accessToken })).createApiKey;
    const rows = await t.app.db.prisma.apiKey.findMany({ where: { user: { email: user.email } } });
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(secret.slice(3));
  });

  it('refuses a revoked key, and an unknown one', async () => {
    const user = await registerUser(t);
    const created = expectData(await t.execute(CreateApiKeyDocument, { input: { name: 'k' } }, { token: user.accessToken })).createApiKey;
    const revoked = expectData(await t.execute(RevokeApiKeyDocument, { id: created.apiKey.id }, { token: user.accessToken }));
    expect(revoked.revokeApiKey.revokedAt).not.toBeNull();
    const withRevoked = await t.execute(MeDocument, {}, { token: created.secret });
    expect(errorCodes(withRevoked)).toEqual(['UNAUTHENTICATED']);
    expect(withRevoked.status).toBe(401);
    const unknown = await t.execute(MeDocument, {}, { token: `sk_${'A'.repeat(43)}` });
    expect(errorCodes(unknown)).toEqual(['UNAUTHENTICATED']);
  });

  it('cannot manage credentials, whatever its scopes: no new or revoked keys, no password change, no logoutEverywhere', async () => {
    const user = await registerUser(t);
    const { secret, apiKey } = expectData(
      await t.execute(CreateApiKeyDocument, { input: { name: 'k', scopes: ['CHAT', 'READ', 'ACCOUNT'] } }, { token: user.accessToken }),
    ).createApiKey;
    const attempts = {
      createKey: await t.execute(CreateApiKeyDocument, { input: { name: 'more' } }, { token: secret }),
      revokeKey: await t.execute(RevokeApiKeyDocument, { id: apiKey.id }, { token: secret }),
      changePassword: await t.execute(
        UpdateProfileDocument,
        { input: { currentPassword: STRONG_PASSWORD, newPassword: 'another strong secret' } },
        { token: secret },
      ),
      logoutEverywhere: await t.execute(LogoutEverywhereDocument, {}, { token: secret }),
    };
    for (const [action, result] of Object.entries(attempts)) {
      expect(errorCodes(result), action).toEqual(['FORBIDDEN']);
      expect(result.errors?.[0]?.message, action).toMatch(/^An API key cannot/);
    }
    const rows = await t.app.db.prisma.apiKey.findMany({ where: { user: { email: user.email } } });
    expect(rows.map((row) => row.revokedAt)).toEqual([null]);
    expectData(await t.execute(LoginDocument, { input: { email: user.email, password: STRONG_PASSWORD } }));
    // Everything else its scopes allow stays allowed, a rename included.
    expect(expectData(await t.execute(UpdateProfileDocument, { input: { name: 'Renamed' } }, { token: secret })).updateProfile.name).toBe(
      'Renamed',
    );
  });

  it('requires a name and authentication', async () => {
    const user = await registerUser(t);
    expect(errorCodes(await t.execute(CreateApiKeyDocument, { input: { name: ' ' } }, { token: user.accessToken }))).toEqual([
      'BAD_USER_INPUT',
    ]);
    expect(errorCodes(await t.execute(CreateApiKeyDocument, { input: { name: 'x' } }))).toEqual(['UNAUTHENTICATED']);
  });
});
