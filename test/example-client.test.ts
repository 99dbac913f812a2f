import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { serveForFile, type TestApp } from './helpers/app.js';

// The README's client script, run as printed against a server in its default (demo) mode.
let t: TestApp;
let url: URL;
serveForFile((app, address) => ((t = app), (url = address)));

it('streams a demo reply with examples/chat.mjs', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [join('examples', 'chat.mjs'), 'Hello from the README'], {
    cwd: join(import.meta.dirname, '..'),
    env: { PATH: process.env.PATH, GRAPHQL_URL: url.toString() },
    timeout: 20_000,
  });
  expect(stdout).toContain('conversation "Hello from the README", reply STREAMING:');
  expect(stdout).toContain('You said: "Hello from the README"');
  expect(stdout).toMatch(/\[COMPLETE\] \d+ tokens, 0 micro-dollars/);
});
