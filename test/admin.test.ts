import { randomUUID } from 'node:crypto';
import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalId, encodeGlobalId } from '../src/global-id.js';
import { auditEntriesAbout, signUp } from './helpers/admin.js';
import {
  AdjustCreditsDocument,
  AdminUsersDocument,
  DeactivateUserDocument,
  ReactivateUserDocument,
  SetUserPlanDocument,
  SetUserRoleDocument,
  UserAccountDocument,
} from './helpers/admin-documents.js';
import { errorCodes, expectData, startTestApp, uniqueEmail, type TestApp } from './helpers/app.js';
import { MessageStreamDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { CreateApiKeyDocument, LoginDocument, MeDocument, RefreshDocument } from './helpers/documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { connectWs } from './helpers/ws.js';

const REPLY = Array.from({ length: 80 }, (_, i) => `word${i}`).join(' ');
const ADMINS = Array.from({ length: 4 }, () => uniqueEmail('root'));

let upstream: MockUpstream;
let t: TestApp;
let url: URL;
beforeAll(async () => {
  upstream = await MockUpstream.start();
  // Listed in capitals and with spaces: the setting is case-insensitive.
  t = await startTestApp({ ...upstream.env, ADMIN_EMAILS: ADMINS.map((e) => ` ${e.toUpperCase()}`).join(','), GENERATION_LEASE_SECONDS: '3' });
  url = await t.app.start(0);
});
afterAll(async () => {
  await t.stop();
  await upstream.stop();
});

const prisma = () => t.app.db.prisma;
const account = async (adminToken: string, id: string) => {
  const node = expectData(await t.execute(UserAccountDocument, { id }, { token: adminToken })).node;
  if (node?.__typename !== 'User') throw new Error(`expected a User, got ${JSON.stringify(node)}`);
  return node;
};

describe('an admin', () => {
  it('finds a user, credits them with a reason, and deactivates them mid-reply: the reply is billed and every credential stops working', async () => {
    const admin = await signUp(t, { email: ADMINS[0] });
    expect(admin.role).toBe('ADMIN');
    const tag = randomUUID().slice(0, 8);
    const user = await signUp(t, { name: `Mallory ${tag}` });
    const apiKey = expectData(await t.execute(CreateApiKeyDocument, { input: { name: 'bot' } }, { token: user.token })).createApiKey.secret;

    // 1. Search by part of the name, in another case.
    const found = expectData(await t.execute(AdminUsersDocument, { search: `MALLORY ${tag}` }, { token: admin.token })).users;
    expect(found.totalCount).toBe(1);
    expect(found.edges[0]!.node).toMatchObject({ id: user.id, email: user.email, role: 'USER', active: true });

    // 2. Credits with a reason, in the user's ledger and in the audit log.
    const entry = expectData(
      await t.execute(AdjustCreditsDocument, { input: { userId: user.id, amountMicros: 2_000_000, reason: '  Goodwill after the outage ' } }, { token: admin.token }),
    ).adjustCredits;
    expect(entry).toMatchObject({ kind: 'ADJUSTMENT', amountMicros: 2_000_000, reason: 'Goodwill after the outage' });
    const credited = await account(admin.token, user.id);
    expect(credited.credits!.ledger!.edges[0]!.node).toEqual({
      kind: 'ADJUSTMENT',
      amountMicros: 2_000_000,
      balanceAfterMicros: credited.credits!.balanceMicros,
      reason: 'Goodwill after the outage',
    });
    expect(await auditEntriesAbout(t, admin.token, user.id)).toMatchObject([
      { action: 'ADJUST_CREDITS', actor: { id: admin.id }, reason: 'Goodwill after the outage', details: { amountMicros: 2_000_000, ledgerEntryId: entry.id } },
    ]);

    // 3. A slow reply streams to the user over graphql-ws.
    const prompt = upstream.prompt({ content: REPLY }, { chunkSize: 1, latency: 50 }, 'deactivated');
    const sent = expectData(
      await t.execute(SendMessageDocument, { input: { content: prompt, model: 'gpt-4o-mini' } }, { token: user.token }),
    ).sendMessage.assistantMessage;
    const ws = connectWs(url, user.token);
    const deltas: string[] = [];
    const streamed = (async () => {
      try {
        for await (const result of ws.iterate({ query: print(MessageStreamDocument), variables: { messageId: sent.id } })) {
          deltas.push((result.data as { messageStream: { delta: string } }).messageStream.delta);
        }
      } catch {
        // The server closes the socket: the iteration ends with the close event.
      }
    })();
    await waitFor('part of the reply to stream', () => deltas.length >= 3);

    // 4. Deactivation: the socket closes, the reply stops and is billed.
    const deactivated = expectData(await t.execute(DeactivateUserDocument, { userId: user.id }, { token: admin.token })).deactivateUser;
    expect(deactivated).toEqual({ id: user.id, active: false });
    expect((await ws.closed).code).toBe(4401);
    await streamed;
    const message = await prisma().message.findUniqueOrThrow({ where: { id: decodeGlobalId(sent.id).id } });
    expect(message.status).toBe('STOPPED');
    expect(message.content.length).toBeLessThan(REPLY.length);
    expect(message.costMicros).toBeGreaterThan(0n);
    const reservation = await prisma().reservation.findFirstOrThrow({ where: { messageId: message.id } });
    expect(reservation.settledAt).not.toBeNull();
    const billed = await account(admin.token, user.id);
    expect(billed.active).toBe(false);
    expect(billed.credits!.heldMicros).toBe(0);
    expect(billed.credits!.ledger!.edges[0]!.node).toMatchObject({ kind: 'USAGE', amountMicros: -Number(message.costMicros) });
    expect(billed.credits!.balanceMicros).toBe(credited.credits!.balanceMicros - Number(message.costMicros));
    expect(billed.quota).toEqual({ usedTokens: message.totalTokens, reservedTokens: 0 });
    expect(billed.usage!.totals).toMatchObject({ requests: 1, costMicros: Number(message.costMicros) });

    // 5. Access token, API key, refresh token and password: all refused.
    for (const token of [user.token, apiKey]) {
      const me = await t.execute(MeDocument, {}, { token });
      expect(me.status).toBe(401);
      expect(errorCodes(me)).toEqual(['UNAUTHENTICATED']);
    }
    expect(errorCodes(await t.execute(RefreshDocument, { refreshToken: user.refreshToken }))).toEqual(['UNAUTHENTICATED']);
    expect(errorCodes(await t.execute(LoginDocument, { input: { email: user.email, password: user.password } }))).toEqual(['UNAUTHENTICATED']);
    const again = connectWs(url, user.token);
    expect((await again.closed).code).toBe(4401);
    expect((await auditEntriesAbout(t, admin.token, user.id)).map((e) => [e.action, e.actor.id])).toEqual([
      ['ADJUST_CREDITS', admin.id],
      ['DEACTIVATE_USER', admin.id],
    ]);
  });

  it('reactivates a user, who signs in again while the sessions from before stay revoked', async () => {
    const admin = await signUp(t, { email: ADMINS[1] });
    const user = await signUp(t);
    const apiKey = expectData(await t.execute(CreateApiKeyDocument, { input: { name: 'bot' } }, { token: user.token })).createApiKey.secret;
    expectData(await t.execute(DeactivateUserDocument, { userId: user.id }, { token: admin.token }));
    expect(expectData(await t.execute(ReactivateUserDocument, { userId: user.id }, { token: admin.token })).reactivateUser.active).toBe(true);

    expect(expectData(await t.execute(LoginDocument, { input: { email: user.email, password: user.password } })).login.user.id).toBe(user.id);
    expect(expectData(await t.execute(MeDocument, {}, { token: apiKey })).me?.id).toBe(user.id);
    expect(errorCodes(await t.execute(RefreshDocument, { refreshToken: user.refreshToken }))).toEqual(['UNAUTHENTICATED']);
    expect((await auditEntriesAbout(t, admin.token, user.id)).map((e) => e.action)).toEqual(['DEACTIVATE_USER', 'REACTIVATE_USER']);
  });

  it('changes roles and plans with before and after in the audit log, but cannot demote or deactivate themself', async () => {
    const admin = await signUp(t, { email: ADMINS[2] });
    const user = await signUp(t);
    const as = { token: admin.token };
    expect(expectData(await t.execute(SetUserRoleDocument, { input: { userId: user.id, role: 'ADMIN' } }, as)).setUserRole.role).toBe('ADMIN');
    expect(expectData(await t.execute(SetUserPlanDocument, { input: { userId: user.id, plan: 'PRO' } }, as)).setUserPlan.plan).toBe('PRO');
    // The new admin's own token now carries the role: requests read it from the database.
    expect(expectData(await t.execute(AdminUsersDocument, { search: user.email }, { token: user.token })).users.totalCount).toBe(1);
    expect(expectData(await t.execute(SetUserRoleDocument, { input: { userId: user.id, role: 'USER' } }, as)).setUserRole.role).toBe('USER');
    expect(errorCodes(await t.execute(AdminUsersDocument, {}, { token: user.token }))).toEqual(['FORBIDDEN']);

    expect(errorCodes(await t.execute(SetUserRoleDocument, { input: { userId: admin.id, role: 'USER' } }, as))).toEqual(['BAD_USER_INPUT']);
    expect(errorCodes(await t.execute(DeactivateUserDocument, { userId: admin.id }, as))).toEqual(['BAD_USER_INPUT']);
    expect((await account(admin.token, admin.id)).role).toBe('ADMIN');

    expect((await auditEntriesAbout(t, admin.token, user.id)).map((e) => [e.action, e.actor.id, e.details])).toEqual([
      ['SET_ROLE', admin.id, { before: 'USER', after: 'ADMIN' }],
      ['SET_PLAN', admin.id, { before: 'FREE', after: 'PRO' }],
      ['SET_ROLE', admin.id, { before: 'ADMIN', after: 'USER' }],
    ]);
    // Sign-up promotion by ADMIN_EMAILS is in the log too, with the admin as their own actor.
    expect(await auditEntriesAbout(t, admin.token, admin.id)).toMatchObject([
      { action: 'PROMOTE_ADMIN', actor: { id: admin.id }, details: { via: 'ADMIN_EMAILS' } },
    ]);
  });

  it('is made again at sign-in when their e-mail is listed in ADMIN_EMAILS', async () => {
    const admin = await signUp(t, { email: ADMINS[3] });
    await prisma().user.update({ where: { id: admin.userId }, data: { role: 'USER' } });
    const login = expectData(await t.execute(LoginDocument, { input: { email: admin.email.toUpperCase(), password: admin.password } })).login;
    expect(expectData(await t.execute(MeDocument, {}, { token: login.accessToken })).me?.role).toBe('ADMIN');
    expect(await prisma().auditEntry.count({ where: { targetUserId: admin.userId, action: 'PROMOTE_ADMIN' } })).toBe(2);
  });
});

describe('refused admin calls', () => {
  it('write nothing: absurd, zero and overdrawing amounts, empty reasons, unknown users, non-admins and API keys', async () => {
    const admin = await signUp(t, { email: uniqueEmail('not-listed') });
    await prisma().user.update({ where: { id: admin.userId }, data: { role: 'ADMIN' } });
    const adminKey = expectData(await t.execute(CreateApiKeyDocument, { input: { name: 'ops' } }, { token: admin.token })).createApiKey.secret;
    const user = await signUp(t);
    const before = await account(admin.token, user.id);
    const adjust = (input: { userId?: string; amountMicros: number; reason?: string }, token = admin.token) =>
      t.execute(AdjustCreditsDocument, { input: { userId: user.id, reason: 'test', ...input } }, { token });

    expect(errorCodes(await adjust({ amountMicros: 1_000_000_000_001 }))).toEqual(['BAD_USER_INPUT']);
    expect(errorCodes(await adjust({ amountMicros: -1_000_000_000_001 }))).toEqual(['BAD_USER_INPUT']);
    expect(errorCodes(await adjust({ amountMicros: 0 }))).toEqual(['BAD_USER_INPUT']);
    const overdraw = await adjust({ amountMicros: -(before.credits!.balanceMicros + 1) });
    expect(errorCodes(overdraw)).toEqual(['BAD_USER_INPUT']);
    expect(overdraw.errors![0]!.message).toMatch(/would overdraw/);
    expect(errorCodes(await adjust({ amountMicros: 5, reason: '   ' }))).toEqual(['BAD_USER_INPUT']);
    expect(errorCodes(await adjust({ amountMicros: 5, reason: 'x'.repeat(501) }))).toEqual(['BAD_USER_INPUT']);
    expect(errorCodes(await adjust({ amountMicros: 5, userId: encodeGlobalId('User', randomUUID()) }))).toEqual(['NOT_FOUND']);
    expect(errorCodes(await adjust({ amountMicros: 5 }, user.token))).toEqual(['FORBIDDEN']);
    expect(errorCodes(await adjust({ amountMicros: 5 }, adminKey))).toEqual(['FORBIDDEN']);
    expect(errorCodes(await t.execute(DeactivateUserDocument, { userId: user.id }, { token: adminKey }))).toEqual(['FORBIDDEN']);
    expect(errorCodes(await t.execute(DeactivateUserDocument, { userId: user.id }, { token: user.token }))).toEqual(['FORBIDDEN']);
    expect(errorCodes(await t.execute(AdminUsersDocument, {}))).toEqual(['UNAUTHENTICATED']);
    expect(errorCodes(await t.execute(AdminUsersDocument, { search: 'x'.repeat(101) }, { token: admin.token }))).toEqual(['BAD_USER_INPUT']);

    expect(await account(admin.token, user.id)).toEqual(before);
    expect(await prisma().auditEntry.count({ where: { OR: [{ targetUserId: user.userId }, { actorUserId: admin.userId }] } })).toBe(0);
    // Taking away exactly the balance is allowed.
    const emptied = expectData(await adjust({ amountMicros: -before.credits!.balanceMicros, reason: 'Chargeback' })).adjustCredits;
    expect(emptied.balanceAfterMicros).toBe(0);
  });
});
