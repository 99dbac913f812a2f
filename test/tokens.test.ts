import { SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalId } from '../src/global-id.js';
import { errorCodes, startTestApp, TEST_JWT_SECRET, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { MeDocument } from './helpers/documents.js';

let t: TestApp;
let userId: string;
let userGlobalId: string;
beforeAll(async () => {
  t = await startTestApp();
  userGlobalId = (await registerUser(t)).user.id;
  userId = decodeGlobalId(userGlobalId).id;
});
afterAll(() => t.stop());

const secret = new TextEncoder().encode(TEST_JWT_SECRET);
const now = () => Math.floor(Date.now() / 1000);

async function sign(
  claims: JWTPayload,
  options: { alg?: string; typ?: string; key?: Uint8Array } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: options.alg ?? 'HS256', typ: options.typ ?? 'at+jwt' })
    .sign(options.key ?? secret);
}

const valid = () => ({ sub: userId, iss: 'switchboard', aud: 'switchboard-api', iat: now(), exp: now() + 60 });

describe('access token verification', () => {
  it('accepts a well-formed token (control case for the refusals below)', async () => {
    const result = await t.execute(MeDocument, {}, { token: await sign(valid()) });
    expect(result.data?.me?.id).toBe(userGlobalId);
  });

  it.each([
    ['expired', async () => sign({ ...valid(), iat: now() - 120, exp: now() - 60 })],
    ['forged (other secret)', async () => sign(valid(), { key: new TextEncoder().encode('x'.repeat(48)) })],
    ['for another audience', async () => sign({ ...valid(), aud: 'someone-else' })],
    ['from another issuer', async () => sign({ ...valid(), iss: 'evil' })],
    ['signed with another algorithm', async () => sign(valid(), { alg: 'HS512' })],
    ['of another type', async () => sign(valid(), { typ: 'JWT' })],
    ['without expiry', async () => sign({ sub: userId, iss: 'switchboard', aud: 'switchboard-api', iat: now() })],
    ['unsigned (alg none)', async () => {
      const encode = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      return `${encode({ alg: 'none', typ: 'at+jwt' })}.${encode(valid())}.`;
    }],
    ['for a user that does not exist', async () => sign({ ...valid(), sub: '01890000-0000-7000-8000-000000000000' })],
    ['garbage', async () => 'not.a.jwt'],
  ])('refuses a token that is %s with UNAUTHENTICATED and HTTP 401', async (_label, make) => {
    const result = await t.execute(MeDocument, {}, { token: await make() });
    expect(errorCodes(result)).toEqual(['UNAUTHENTICATED']);
    expect(result.status).toBe(401);
    expect(result.data ?? null).toBeNull();
  });

  it('refuses an Authorization header that is not a Bearer token', async () => {
    const response = await t.app.yoga.fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Basic dXNlcjpwYXNz' },
      body: JSON.stringify({ query: '{ me { id } }' }),
    });
    const body = await response.json();
    expect(body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
  });

  it('refuses the access token of a deactivated account', async () => {
    const user = await registerUser(t);
    await t.app.db.prisma.user.update({ where: { email: user.email }, data: { deactivatedAt: new Date() } });
    expect(errorCodes(await t.execute(MeDocument, {}, { token: user.accessToken }))).toEqual(['UNAUTHENTICATED']);
  });
});
