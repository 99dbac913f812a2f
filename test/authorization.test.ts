import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCodes, expectData, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { CreateApiKeyDocument, MeDocument, NodeDocument, NodesDocument, RevokeApiKeyDocument } from './helpers/documents.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

async function userWithKey() {
  const user = await registerUser(t);
  const key = expectData(await t.execute(CreateApiKeyDocument, { input: { name: 'mine' } }, { token: user.accessToken }));
  return { ...user, apiKeyId: key.createApiKey.apiKey.id };
}

const globalId = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString('base64');

describe('reading objects by global id', () => {
  it('finds your own user and API key through node and nodes', async () => {
    const alice = await userWithKey();
    const node = expectData(await t.execute(NodeDocument, { id: alice.user.id }, { token: alice.accessToken })).node;
    expect(node).toMatchObject({ __typename: 'User', email: alice.email });
    const nodes = expectData(
      await t.execute(NodesDocument, { ids: [alice.user.id, alice.apiKeyId] }, { token: alice.accessToken }),
    ).nodes;
    expect(nodes.map((n) => n?.__typename)).toEqual(['User', 'ApiKey']);
  });

  it("never returns another user's objects", async () => {
    const alice = await userWithKey();
    const mallory = await registerUser(t);
    for (const id of [alice.user.id, alice.apiKeyId]) {
      const single = await t.execute(NodeDocument, { id }, { token: mallory.accessToken });
      expect(single.data?.node ?? null).toBeNull();
      expect(JSON.stringify(single)).not.toContain(alice.email);
    }
    const many = await t.execute(NodesDocument, { ids: [alice.user.id, alice.apiKeyId] }, { token: mallory.accessToken });
    expect(many.data?.nodes).toEqual([null, null]);
  });

  it('returns nothing to anonymous callers', async () => {
    const alice = await userWithKey();
    const result = await t.execute(NodeDocument, { id: alice.user.id });
    expect(result.data?.node ?? null).toBeNull();
  });

  it('lets an admin read any user', async () => {
    const alice = await userWithKey();
    const admin = await registerUser(t);
    await t.app.db.prisma.user.update({ where: { email: admin.email }, data: { role: 'ADMIN' } });
    const node = expectData(await t.execute(NodeDocument, { id: alice.user.id }, { token: admin.accessToken })).node;
    expect(node).toMatchObject({ __typename: 'User', email: alice.email });
    expect(expectData(await t.execute(MeDocument, {}, { token: admin.accessToken })).me?.role).toBe('ADMIN');
  });

  it.each([
    ['not base64 of Type:id', 'definitely-not-an-id'],
    ['a non-uuid id', globalId('User', "1' OR 1=1 --")],
    ['an empty type', globalId('', '01890000-0000-7000-8000-000000000000')],
  ])('rejects %s with BAD_USER_INPUT', async (_label, id) => {
    const user = await registerUser(t);
    const result = await t.execute(NodeDocument, { id }, { token: user.accessToken });
    expect(errorCodes(result)).toEqual(['BAD_USER_INPUT']);
  });

  it('returns null for a well-formed id that matches nothing', async () => {
    const user = await registerUser(t);
    const result = await t.execute(NodeDocument, { id: globalId('User', '01890000-0000-7000-8000-000000000000') }, { token: user.accessToken });
    expect(result.errors).toBeUndefined();
    expect(result.data?.node).toBeNull();
  });
});

describe('mutations on objects you do not own', () => {
  it("cannot revoke another user's API key, and the key keeps working", async () => {
    const alice = await userWithKey();
    const mallory = await registerUser(t);
    const result = await t.execute(RevokeApiKeyDocument, { id: alice.apiKeyId }, { token: mallory.accessToken });
    expect(errorCodes(result)).toEqual(['NOT_FOUND']);
    const key = await t.app.db.prisma.apiKey.findFirstOrThrow({ where: { user: { email: alice.email } } });
    expect(key.revokedAt).toBeNull();
  });

  it('refuses an id of the wrong type', async () => {
    const alice = await userWithKey();
    const result = await t.execute(RevokeApiKeyDocument, { id: alice.user.id }, { token: alice.accessToken });
    expect(errorCodes(result)).toEqual(['BAD_USER_INPUT']);
  });
});

describe('limits', () => {
  it('refuses more than 100 ids in one nodes query', async () => {
    const user = await registerUser(t);
    const ids = Array.from({ length: 101 }, () => user.user.id);
    const result = await t.execute(NodesDocument, { ids }, { token: user.accessToken });
    expect(errorCodes(result)).toEqual(['BAD_USER_INPUT']);
  });
});
