import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectData, serveForFile, uniqueEmail, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { CreateApiKeyDocument } from './helpers/documents.js';
import { tempDir } from './helpers/leftovers.js';
import { run } from './helpers/processes.js';

// The README's "Try it" examples, run as printed; only the address and the email are swapped,
// so that the test server (on a free port) and a fresh account are used.
const root = join(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const tryItStart = readme.indexOf('## Try it');
const tryIt = readme.slice(tryItStart, readme.indexOf('\n## ', tryItStart + 1));
const codeBlocks = (language: string) => [...tryIt.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
const codeBlock = (language: string) => {
  const block = codeBlocks(language)[0];
  if (!block) throw new Error(`no ${language} block under "## Try it" in README.md`);
  return block;
};
// The curl steps, in order, as one shell session (later steps use the TOKEN of the first); the
// node and tsx examples have tests of their own (example-client, typed-client-example).
const curlSession = codeBlocks('sh').filter((block) => block.includes('curl'));
const BETWEEN_STEPS = '--- next step ---';
let t: TestApp;
let url: URL;
serveForFile((app, address) => ((t = app), (url = address)));

describe('README examples', () => {
  it('the curl session signs up, chats, streams a reply over SSE and uses an API key', async () => {
    expect(curlSession).toHaveLength(4);
    const email = uniqueEmail('ada');
    const script = curlSession
      .join(`echo; echo '${BETWEEN_STEPS}'\n`)
      .replaceAll('http://localhost:4000', url.origin)
      .replaceAll('ada@example.com', email);
    const { status, stdout, stderr } = await run('bash', ['-euo', 'pipefail', '-c', script], { env: { PATH: process.env.PATH } });
    expect(status, stderr).toBe(0);
    const [signUp, chat, stream, apiKey] = stdout.split(`\n${BETWEEN_STEPS}\n`);
    // curl prints each body without a newline: the responses of a step arrive back to back.
    const bodies = (output: string | undefined) => output!.split(/(?<=\})(?=\{"(?:data|errors)")/).map((body) => JSON.parse(body));

    const [registered, me] = bodies(signUp);
    expect(registered.errors).toBeUndefined();
    expect(registered.data.register.user.email).toBe(email);
    expect(me.data.me).toMatchObject({ email, name: 'Ada', role: 'USER' });

    const [sent] = bodies(chat);
    expect(sent.errors).toBeUndefined();
    expect(sent.data.sendMessage.conversation.title).toBe('Hello there');
    expect(sent.data.sendMessage.assistantMessage).toMatchObject({ status: 'COMPLETE', content: expect.stringContaining('You said: "Hello there"') });
    expect(sent.data.sendMessage.assistantMessage.totalTokens).toBeGreaterThan(0);

    // Server-sent events: one "next" per delta, the last one done, then "complete".
    const events = [...stream!.matchAll(/^event: (\w+)\ndata:(.*)$/gm)].map(([, event, data]) => ({ event, data }));
    expect(events.at(-1)?.event).toBe('complete');
    const results = events.filter((e) => e.event === 'next').map((e) => JSON.parse(e.data!).data.messageStream);
    expect(results.length).toBeGreaterThan(1);
    expect(results.at(-1)).toMatchObject({ done: true, message: { status: 'COMPLETE' } });
    expect(results.map((r) => r.delta).join('')).toContain('You said: "Tell me more"');

    const [keys] = bodies(apiKey);
    expect(keys.errors).toBeUndefined();
    const key = keys.data.me.apiKeys.edges[0].node;
    expect(key).toMatchObject({ name: 'laptop', prefix: expect.stringMatching(/^sk_/) });
    expect(key.lastUsedAt).not.toBeNull();
  });

  it('the graphql-ws snippet reads me with an API key', async () => {
    const user = await registerUser(t, 'Ws');
    const key = expectData(await t.execute(CreateApiKeyDocument, { input: { name: 'ws' } }, { token: user.accessToken })).createApiKey.secret;

    // Saved inside the project (as the README says) so that graphql-ws and ws resolve.
    const file = join(tempDir('.readme-test', root), 'me.mjs');
    writeFileSync(file, codeBlock('js').replaceAll('ws://localhost:4000', url.origin.replace(/^http/, 'ws')));
    const read = await run(process.execPath, [file], { env: { PATH: process.env.PATH, KEY: key } });
    expect(read.status, read.stderr).toBe(0);
    expect(JSON.parse(read.stdout.trim())).toEqual({ data: { me: { email: user.email, name: 'Ws' } } });
    // A bad key: a clear line at once, not a raw close event after half a minute of retries.
    const refused = await run(process.execPath, [file], { env: { PATH: process.env.PATH, KEY: 'sk_not-a-key' } });
    expect(refused.status).toBe(1);
    expect(refused.stderr.trim()).toBe('graphql-ws: Unauthorized: API key is invalid, revoked or expired');
  });
});
