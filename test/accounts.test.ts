import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCodes, expectData, startTestApp, STRONG_PASSWORD, uniqueEmail, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import {
  CreateApiKeyDocument,
  LoginDocument,
  LogoutDocument,
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

    const created = expectData(await t.execute(CreateApiKeyDocument, { input: { name: 'ci' } }, { token: login.accessToken })).createApiKey;
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

  it('lets exactly one of two concurrent refreshes with the same token win', async () => {
    const user = await registerUser(t);
    const results = await Promise.all([
      t.execute(RefreshDocument, { refreshToken: user.refreshToken }),
      t.execute(RefreshDocument, { refreshToken: user.refreshToken }),
    ]);
    expect(results.filter((r) => !r.errors).length).toBe(1);
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

  it('requires authentication', async () => {
    const result = await t.execute(UpdateProfileDocument, { input: { name: 'x' } });
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

  it('requires a name and authentication', async () => {
    const user = await registerUser(t);
    expect(errorCodes(await t.execute(CreateApiKeyDocument, { input: { name: ' ' } }, { token: user.accessToken }))).toEqual([
      'BAD_USER_INPUT',
    ]);
    expect(errorCodes(await t.execute(CreateApiKeyDocument, { input: { name: 'x' } }))).toEqual(['UNAUTHENTICATED']);
  });
});
