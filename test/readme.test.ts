import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectData, serveForFile, uniqueEmail, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { CreateApiKeyDocument } from './helpers/documents.js';
import { registerLeftover } from './helpers/leftovers.js';
import { run } from './helpers/processes.js';

// The README's "Try it" examples, run as printed; only the address and the email are swapped,
// so that the test server (on a free port) and a fresh account are used.
const root = join(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const tryIt = readme.slice(readme.indexOf('## Try it'));
const codeBlock = (language: string) => {
  const match = new RegExp('```' + language + '\\n([\\s\\S]*?)```').exec(tryIt);
  if (!match?.[1]) throw new Error(`no ${language} block under "## Try it" in README.md`);
  return match[1];
};
let t: TestApp;
let url: URL;
serveForFile((app, address) => ((t = app), (url = address)));

describe('README examples', () => {
  it('the curl session signs up, logs in, reads me and uses an API key', async () => {
    const email = uniqueEmail('ada');
    const script = codeBlock('sh').replaceAll('http://localhost:4000', url.origin).replaceAll('ada@example.com', email);
    const { status, stdout, stderr } = await run('bash', ['-euo', 'pipefail', '-c', script], { env: { PATH: process.env.PATH } });
    expect(status, stderr).toBe(0);
    // curl prints each body without a newline: the three responses arrive back to back.
    const results = stdout.split(/(?<=\})(?=\{"(?:data|errors)")/).map((body) => JSON.parse(body));
    expect(results).toHaveLength(3);
    for (const result of results) expect(result.errors).toBeUndefined();
    expect(results[0].data.register.user.email).toBe(email);
    expect(results[1].data.me).toMatchObject({ email, name: 'Ada', role: 'USER' });
    const key = results[2].data.me.apiKeys.edges[0].node;
    expect(key).toMatchObject({ name: 'laptop', prefix: expect.stringMatching(/^sk_/) });
    expect(key.lastUsedAt).not.toBeNull();
  });

  it('the graphql-ws snippet reads me with an API key', async () => {
    const user = await registerUser(t, 'Ws');
    const key = expectData(await t.execute(CreateApiKeyDocument, { input: { name: 'ws' } }, { token: user.accessToken })).createApiKey.secret;

    // Saved inside the project (as the README says) so that graphql-ws and ws resolve.
    const dir = join(root, 'data', 'readme-test');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `me-${Date.now()}.mjs`);
    writeFileSync(file, codeBlock('js').replaceAll('ws://localhost:4000', url.origin.replace(/^http/, 'ws')));
    registerLeftover(() => rmSync(file, { force: true }));
    const read = await run(process.execPath, [file], { env: { PATH: process.env.PATH, KEY: key } });
    expect(read.status, read.stderr).toBe(0);
    expect(JSON.parse(read.stdout.trim())).toEqual({ data: { me: { email: user.email, name: 'Ws' } } });
    // A bad key: a clear line at once, not a raw close event after half a minute of retries.
    const refused = await run(process.execPath, [file], { env: { PATH: process.env.PATH, KEY: 'sk_not-a-key' } });
    expect(refused.status).toBe(1);
    expect(refused.stderr.trim()).toBe('graphql-ws: Unauthorized: API key is invalid, revoked or expired');
  });
});
