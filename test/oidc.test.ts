import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCodes, expectData, startTestApp, STRONG_PASSWORD, uniqueEmail, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { MeDocument, RegisterDocument, UpdateProfileDocument } from './helpers/documents.js';

/** A real JWKS endpoint on loopback, like an identity provider's. */
let jwksServer: Server;
let issuer: string;
let signingKey: CryptoKey;
let strangerKey: CryptoKey;
let t: TestApp;
const audience = 'https://switchboard.example/api';

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  signingKey = pair.privateKey;
  strangerKey = (await generateKeyPair('RS256', { extractable: true })).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
  jwksServer = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/`;
  t = await startTestApp({ OIDC_ISSUER: issuer, OIDC_AUDIENCE: audience });
});
afterAll(async () => {
  await t.stop();
  jwksServer.close();
});

const now = () => Math.floor(Date.now() / 1000);

function idToken(claims: JWTPayload, key: CryptoKey = signingKey) {
  return new SignJWT({ iss: issuer, aud: audience, iat: now(), exp: now() + 300, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
    .sign(key);
}

describe('OIDC sign-in through a JWKS', () => {
  it('creates the user on first sight and finds the same user afterwards', async () => {
    const sub = `auth0|${Date.now()}`;
    const email = `oidc-${Date.now()}@example.com`;
    const token = await idToken({ sub, email, email_verified: true, name: 'Olive' });
    const first = expectData(await t.execute(MeDocument, {}, { token })).me;
    expect(first).toMatchObject({ email, name: 'Olive', role: 'USER' });
    const second = expectData(await t.execute(MeDocument, {}, { token: await idToken({ sub }) })).me;
    expect(second?.id).toBe(first?.id);
    expect(await t.app.db.prisma.user.count({ where: { oidcSubject: sub } })).toBe(1);
  });

  it('signs in a subject without an email under a non-deliverable placeholder', async () => {
    const me = expectData(await t.execute(MeDocument, {}, { token: await idToken({ sub: `noemail-${Date.now()}` }) })).me;
    expect(me?.email).toMatch(/\.oidc\.invalid$/);
  });

  it('does not take over a password account through an unverified email', async () => {
    const local = await registerUser(t);
    const token = await idToken({ sub: `attacker-${Date.now()}`, email: local.email, email_verified: false });
    const me = expectData(await t.execute(MeDocument, {}, { token })).me;
    expect(me?.id).not.toBe(local.user.id);
    expect(me?.email).toMatch(/\.oidc\.invalid$/);
    const owner = await t.app.db.prisma.user.findUniqueOrThrow({ where: { email: local.email } });
    expect(owner.oidcSubject).toBeNull();
  });

  it('does not claim an unverified email, so that its owner can still register', async () => {
    const email = uniqueEmail('unverified');
    const token = await idToken({ sub: `squatter-${Date.now()}`, email, email_verified: false, name: 'Squatter' });
    const squatter = expectData(await t.execute(MeDocument, {}, { token })).me;
    expect(squatter).toMatchObject({ name: 'Squatter', email: expect.stringMatching(/\.oidc\.invalid$/) });
    const owner = expectData(await t.execute(RegisterDocument, { input: { email, password: STRONG_PASSWORD, name: 'Owner' } }));
    expect(owner.register.user.email).toBe(email);
  });

  it('refuses to give an account that signs in only through OIDC a password', async () => {
    const sub = `oidc-only-${Date.now()}`;
    const token = await idToken({ sub, email: uniqueEmail('oidc'), email_verified: true });
    const result = await t.execute(UpdateProfileDocument, { input: { newPassword: 'a password of my own' } }, { token });
    expect(errorCodes(result)).toEqual(['FORBIDDEN']);
    expect(result.errors?.[0]?.message).toMatch(/identity provider/);
    const user = await t.app.db.prisma.user.findFirstOrThrow({ where: { oidcSubject: sub } });
    expect(user.passwordHash).toBeNull();
  });

  it.each([
    ['signed by a key not in the JWKS', () => idToken({ sub: 'x' }, strangerKey)],
    ['for another audience', () => idToken({ sub: 'x', aud: 'other' })],
    ['expired', () => idToken({ sub: 'x', iat: now() - 600, exp: now() - 300 })],
    ['HS256 with the issuer claim (algorithm confusion)', () =>
      new SignJWT({ iss: issuer, aud: audience, sub: 'x', exp: now() + 60 })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode('y'.repeat(40)))],
  ])('refuses a token %s with HTTP 401', async (_label, make) => {
    const result = await t.execute(MeDocument, {}, { token: await make() });
    expect(errorCodes(result)).toEqual(['UNAUTHENTICATED']);
    expect(result.status).toBe(401);
  });
});
