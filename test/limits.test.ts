import { join } from 'node:path';
import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser } from './helpers/accounts.js';
import { errorCodes, executeRaw, expectData, startTestApp, STRONG_PASSWORD, type TestApp } from './helpers/app.js';
import { NestedConversationsDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { connectWs, wsExecute } from './helpers/ws.js';
import { MeDocument, RegisterDocument } from './helpers/documents.js';

let t: TestApp;
let url: URL;
let token: string;

beforeAll(async () => {
  t = await startTestApp();
  url = await t.app.start(0);
  token = (await registerUser(t)).accessToken;
});
afterAll(() => t?.stop());

/** A conversation's messages, each message's conversation, its messages… `levels` deep. */
function fanOut(levels: number, first = 100): string {
  let selection = 'id';
  for (let level = 0; level < levels; level += 1) {
    selection = `messages(first: ${first}) { edges { node { id conversation { id ${selection} } } } }`;
  }
  return `{ me { conversations(first: ${first}) { edges { node { ${selection} } } } } }`;
}

const codeAndLimit = (result: Awaited<ReturnType<typeof executeRaw>>) =>
  result.errors?.map((e) => [e.extensions?.code, e.extensions?.limit]);

describe('query limits', () => {
  it('refuses a nested fan-out by its cost before running it', async () => {
    const result = await executeRaw(t, { query: fanOut(6) }, { token });
    expect(result.data).toBeUndefined();
    expect(codeAndLimit(result)).toEqual([['BAD_USER_INPUT', 'depth']]);
    // Shallow enough for the depth limit, still far too wide.
    const wide = await executeRaw(t, { query: fanOut(1) }, { token });
    expect(codeAndLimit(wide)).toEqual([['BAD_USER_INPUT', 'cost']]);
    expect(wide.errors?.[0]?.message).toMatch(/costs \d+, more than the limit of 20000/);
  });

  it('counts page sizes given as variables', async () => {
    const query = `query ($n: Int) { me { conversations(first: $n) { edges { node { messages(first: $n) { edges { node { conversation { messages(first: $n) { edges { node { id } } } } } } } } } } } }`;
    const small = await executeRaw(t, { query, variables: { n: 5 } }, { token });
    expect(small.errors).toBeUndefined();
    const large = await executeRaw(t, { query, variables: { n: 100 } }, { token });
    expect(codeAndLimit(large)).toEqual([['BAD_USER_INPUT', 'cost']]);
  });

  it('counts the default page of a connection whose page size is left out', async () => {
    const nested = (page: string) =>
      `{ me { conversations${page} { edges { node { messages${page} { edges { node { conversation { messages${page} { edges { node { id } } } } } } } } } } } }`;
    const unsized = await executeRaw(t, { query: nested('') }, { token });
    const sized = await executeRaw(t, { query: nested('(first: 20)') }, { token });
    expect(codeAndLimit(unsized)).toEqual([['BAD_USER_INPUT', 'cost']]);
    // The server returns 20 items a page either way, so both cost the same (25,662 when written).
    expect(unsized.errors?.[0]?.message).toBe(sized.errors?.[0]?.message);
  });

  it('admits the nested conversations query of the benchmark', async () => {
    expectData(await t.execute(NestedConversationsDocument, undefined, { token }));
  });

  it('refuses too many aliases, directives, tokens and bytes', async () => {
    const aliases = `{ ${Array.from({ length: 16 }, (_, i) => `a${i}: __typename`).join(' ')} }`;
    expect(codeAndLimit(await executeRaw(t, { query: aliases }))).toEqual([['BAD_USER_INPUT', 'aliases']]);
    const directives = `{ __typename ${'@include(if: true) '.repeat(11)}}`;
    expect(codeAndLimit(await executeRaw(t, { query: directives }))).toContainEqual(['BAD_USER_INPUT', 'directives']);
    const tokens = await executeRaw(t, { query: `{ ${'a '.repeat(3001)}}` });
    expect(tokens.errors?.[0]?.message).toMatch(/more that 3000 tokens/);
    // Whitespace is free for the tokenizer, not for the server: padded to 1 MB, still refused.
    const padded = await executeRaw(t, { query: `{ __typename${' '.repeat(1_000_000)}}` });
    expect(codeAndLimit(padded)).toEqual([['BAD_USER_INPUT', 'bytes']]);
  });

  it('allows one sign-in mutation per operation', async () => {
    const query = `mutation { a: login(input: {email: "a@example.com", password: "x"}) { accessToken } b: login(input: {email: "b@example.com", password: "y"}) { accessToken } }`;
    expect(codeAndLimit(await executeRaw(t, { query }))).toEqual([['BAD_USER_INPUT', 'signIns']]);
    const viaFragment = `mutation { ...Two } fragment Two on Mutation { register(input: {email: "c@example.com", password: "x", name: "c"}) { accessToken } refreshToken(refreshToken: "x") { accessToken } }`;
    expect(codeAndLimit(await executeRaw(t, { query: viaFragment }))).toEqual([['BAD_USER_INPUT', 'signIns']]);
  });

  it('refuses over graphql-ws as an operation error and keeps the socket open', async () => {
    const client = connectWs(url, token);
    try {
      const refused = await new Promise<unknown>((resolve) => {
        client.subscribe({ query: fanOut(2) }, { next: () => {}, error: resolve, complete: () => resolve(undefined) });
      });
      expect(JSON.stringify(refused)).toMatch(/BAD_USER_INPUT|costs/);
      expectData(await wsExecute(client, MeDocument));
    } finally {
      await client.dispose();
    }
  });
});

describe('variable limits', () => {
  const send = print(SendMessageDocument);

  it('refuses a variables object with tens of thousands of keys before coercing it', async () => {
    const input: Record<string, string> = { content: 'hi' };
    for (let i = 0; i < 40_000; i += 1) input[`k${i}`] = 'x';
    const result = await executeRaw(t, { query: send, variables: { input } });
    expect(codeAndLimit(result)).toEqual([['BAD_USER_INPUT', 'variableValues']]);
  });

  it('refuses deeply nested variables', async () => {
    let nested: unknown = 'leaf';
    for (let i = 0; i < 50; i += 1) nested = { nested };
    const result = await executeRaw(t, { query: send, variables: { input: { content: 'hi', deep: nested } } });
    expect(codeAndLimit(result)).toEqual([['BAD_USER_INPUT', 'variableDepth']]);
  });

  it.each([
    ['a fraction for an Int', { maxTokens: 1.5 }],
    ['a string for an Int', { maxTokens: '100' }],
    ['an Int out of range', { maxTokens: 1e12 }],
    ['an unknown input field', { contnt: 'typo' }],
  ])('answers %s with BAD_USER_INPUT', async (_name, extra) => {
    const result = await executeRaw(t, { query: send, variables: { input: { content: 'hi', ...extra } } }, { token });
    expect(errorCodes(result as never)).toEqual(['BAD_USER_INPUT']);
  });
});

describe('input hygiene', () => {
  it('refuses NUL characters in stored text, in variables and in literals', async () => {
    const send = await executeRaw(t, { query: print(SendMessageDocument), variables: { input: { content: 'a\u0000b' } } }, { token });
    expect(errorCodes(send as never)).toEqual(['BAD_USER_INPUT']);
    const literal = await executeRaw(t, { query: 'mutation { createConversation(input: { title: "a\\u0000b" }) { id } }' }, { token });
    expect(errorCodes(literal as never)).toEqual(['BAD_USER_INPUT']);
  });

  it('names the argument that holds a malformed id', async () => {
    const fieldOf = (result: Awaited<ReturnType<typeof executeRaw>>) => result.errors?.map((e) => [e.extensions?.code, e.extensions?.field]);
    const stop = await executeRaw(t, { query: 'mutation { stopGeneration(messageId: "garbage") { id } }' }, { token });
    expect(fieldOf(stop)).toEqual([['BAD_USER_INPUT', 'messageId']]);
    const send = await executeRaw(t, { query: print(SendMessageDocument), variables: { input: { content: 'x', conversationId: 'bm9wZQ==' } } }, { token });
    expect(fieldOf(send)).toEqual([['BAD_USER_INPUT', 'input.conversationId']]);
    expect(send.errors?.[0]?.message).toBe('input.conversationId is not a valid ID');
  });

  it('refuses bad paging arguments without nulling the parent object', async () => {
    const negative = await executeRaw(t, { query: '{ me { email conversations(last: -1) { totalCount } } }' }, { token });
    expect(negative.errors?.map((e) => [e.extensions?.code, e.extensions?.field])).toEqual([['BAD_USER_INPUT', 'last']]);
    expect(negative.data).toBeUndefined();
    const badCursor = await executeRaw(t, { query: '{ me { email conversations(first: 1, after: "bm90LWEtY3Vyc29y") { totalCount } } }' }, { token });
    expect(badCursor.errors?.map((e) => [e.extensions?.code, e.extensions?.field])).toEqual([['BAD_USER_INPUT', 'after']]);
  });
});

describe('with introspection off', () => {
  let closed: TestApp;
  beforeAll(async () => {
    closed = await startTestApp({ INTROSPECTION: 'false' });
  });
  afterAll(() => closed?.stop());

  it('gives no "Did you mean" suggestions', async () => {
    const field = await executeRaw(closed, { query: '{ mee { id } }' });
    expect(field.errors?.[0]?.message).toMatch(/Cannot query field "mee"/);
    expect(JSON.stringify(field.errors)).not.toMatch(/Did you mean/);
    const variable = await executeRaw(closed, { query: print(SendMessageDocument), variables: { input: { contnt: 'x' } } });
    expect(JSON.stringify(variable.errors)).not.toMatch(/Did you mean/);
    expect(JSON.stringify(variable.errors)).toMatch(/contnt/);
  });
});

describe('CSRF prevention', () => {
  it('refuses a form-encoded mutation, which a browser would send cross-site without a preflight', async () => {
    const email = `csrf-${Date.now()}@example.com`;
    const query = `mutation { register(input: {email: "${email}", password: "correct horse battery", name: "C"}) { accessToken } }`;
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query }).toString(),
    });
    expect(response.status).toBe(403);
    const plain = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ query }) });
    expect(plain.status).toBe(403);
    // A JSON post, or a GET query as urql sends them, needs no extra header.
    const get = await fetch(`${url}?query=${encodeURIComponent('{ __typename }')}`);
    expect(await get.json()).toEqual({ data: { __typename: 'Query' } });
    const login = await executeRaw(t, { query: `mutation { login(input: {email: "${email}", password: "correct horse battery"}) { accessToken } }` });
    expect(errorCodes(login as never)).toEqual(['UNAUTHENTICATED']);
  });
});

describe('trusted documents (PERSISTED_OPERATIONS_FILE)', () => {
  let trusted: TestApp;
  let trustedUrl: URL;
  const meId = (MeDocument as unknown as { __meta__: { hash: string } }).__meta__.hash;
  beforeAll(async () => {
    trusted = await startTestApp({ PERSISTED_OPERATIONS_FILE: join(import.meta.dirname, 'generated', 'persisted-documents.json') });
    trustedUrl = await trusted.app.start(0);
  });
  afterAll(() => trusted?.stop());

  it('runs listed documents by id and refuses any other document, over HTTP', async () => {
    const { accessToken } = await registerUserById(trusted);
    const byId = await executeRaw(trusted, { documentId: meId }, { token: accessToken });
    expect(byId.errors).toBeUndefined();
    expect(byId.data).toMatchObject({ me: { id: expect.any(String) } });
    const apolloStyle = await executeRaw(trusted, { extensions: { persistedQuery: { version: 1, sha256Hash: meId.slice(7) } } }, { token: accessToken });
    expect(apolloStyle.data).toMatchObject({ me: { id: expect.any(String) } });

    const text = await executeRaw(trusted, { query: print(MeDocument) }, { token: accessToken });
    expect(text.status).toBe(400);
    expect(text.errors?.map((e) => e.extensions?.code)).toEqual(['PERSISTED_QUERY_ONLY']);
    const unknown = await executeRaw(trusted, { documentId: "sha256:0000" });
    expect(unknown.errors?.map((e) => e.extensions?.code)).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
  });

  it('applies the same rule over graphql-ws', async () => {
    const { accessToken } = await registerUserById(trusted);
    const client = connectWs(trustedUrl, accessToken);
    const run = (payload: Record<string, unknown>) =>
      new Promise<unknown>((resolve) => {
        const results: unknown[] = [];
        client.subscribe(payload as never, { next: (r) => results.push(r), error: resolve, complete: () => resolve(results) });
      });
    try {
      expect(JSON.stringify(await run({ query: '', documentId: meId }))).toMatch(/"me":\{.*"id":"/);
      expect(JSON.stringify(await run({ query: print(MeDocument) }))).toMatch(/Only trusted documents/);
    } finally {
      await client.dispose();
    }
  });
});

/** Registers through the trusted Register document (a query text would be refused). */
async function registerUserById(app: TestApp) {
  const id = (RegisterDocument as unknown as { __meta__: { hash: string } }).__meta__.hash;
  const input = { email: `trusted-${Math.random().toString(36).slice(2)}@example.com`, password: STRONG_PASSWORD, name: 'T' };
  const result = await executeRaw(app, { documentId: id, variables: { input } });
  return (result.data as { register: { accessToken: string } }).register;
}
