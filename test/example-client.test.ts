import { join } from 'node:path';
import { expect, it } from 'vitest';
import { serveForFile } from './helpers/app.js';
import { run } from './helpers/processes.js';

// The README's client script, run as printed against a server in its default (demo) mode.
let url: URL;
serveForFile((_, address) => (url = address));

it('streams a demo reply with examples/chat.mjs', async () => {
  const { status, stdout, stderr } = await run(process.execPath, [join('examples', 'chat.mjs'), 'Hello from the README'], {
    env: { PATH: process.env.PATH, GRAPHQL_URL: url.toString() },
  });
  expect(status, stderr).toBe(0);
  expect(stdout).toContain('conversation "Hello from the README", reply STREAMING:');
  expect(stdout).toContain('You said: "Hello from the README"');
  expect(stdout).toMatch(/\[COMPLETE\] \d+ tokens, 0 micro-dollars/);
});
