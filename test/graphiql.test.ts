import { existsSync } from 'node:fs';
import { get, type IncomingHttpHeaders } from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { chromium, type Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { serveForFile, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { skipping } from './helpers/skips.js';

// The README's path in a real browser: GraphiQL, log in, send a message, watch
// the reply arrive through a subscription. Skipped when no Chromium is installed, except when
// CHROMIUM_PATH names one (as .ci/run does after scripts/ensure-browser.sh): then it must run.
const browserPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveBrowser = existsSync(browserPath);
if (!haveBrowser && process.env.CHROMIUM_PATH) throw new Error(`CHROMIUM_PATH=${browserPath} does not exist`);

let t: TestApp;
let url: URL;
serveForFile((app, address) => ((t = app), (url = address)));

/** Replaces the text of a GraphiQL (Monaco) editor without typing it key by key (no auto-closing). */
async function setEditor(page: Page, selector: string, text: string) {
  await page.click(selector);
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

/** Runs the operation in the query editor and waits until the response pane shows `until`. */
async function run(page: Page, operation: string, until: RegExp): Promise<string> {
  await setEditor(page, '.graphiql-query-editor .graphiql-editor', operation);
  await page.click('.graphiql-execute-button');
  const response = page.locator('.graphiql-response');
  await expect.poll(async () => (await response.innerText()).replace(/\s+/g, ''), { timeout: 15_000 }).toMatch(until);
  // Monaco wraps long lines; without whitespace the JSON strings read back whole.
  return (await response.innerText()).replace(/\s+/g, '');
}

/** GET with exactly these headers (fetch would add and undo an Accept-Encoding of its own). */
function getRaw(target: URL, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(target, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

describe('the GraphiQL page', () => {
  it('is sent compressed to browsers that accept gzip or br, and whole to those that do not', async () => {
    const plain = await getRaw(url, { accept: 'text/html' });
    expect(plain.status).toBe(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString()).toContain('<title>Switchboard</title>');

    const gzipped = await getRaw(url, { accept: 'text/html', 'accept-encoding': 'gzip, deflate' });
    expect(gzipped.status).toBe(200);
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gzipped.headers.vary).toMatch(/accept-encoding/i);
    expect(Number(gzipped.headers['content-length'])).toBe(gzipped.body.length);
    expect(gzipped.body.length).toBeLessThan(plain.body.length / 3);
    expect(gunzipSync(gzipped.body).equals(plain.body)).toBe(true);

    const brotli = await getRaw(url, { accept: 'text/html', 'accept-encoding': 'gzip, br' });
    expect(brotli.headers['content-encoding']).toBe('br');
    expect(brotliDecompressSync(brotli.body).equals(plain.body)).toBe(true);
    // Security headers apply to the compressed page as to every answer.
    expect(brotli.headers['x-frame-options']).toBe('DENY');
  });
});

describe.skipIf(skipping(!haveBrowser, `GraphiQL in a browser: needs Chromium at ${browserPath} (or CHROMIUM_PATH)`))('GraphiQL in a browser', () => {
  it('logs in, sends a message and streams the reply through a subscription', async () => {
    // The account the README's curl session created.
    const user = await registerUser(t, 'Ada');
    const browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.goto(url.toString());
      await page.waitForSelector('.graphiql-execute-button', { timeout: 20_000 });

      const loggedIn = await run(
        page,
        `mutation { login(input: {email: "${user.email}", password: "${user.password}"}) { accessToken } }`,
        /"accessToken":"[^"]+"/,
      );
      const accessToken = /"accessToken":"([^"]+)"/.exec(loggedIn)![1];

      await page.getByText('Headers', { exact: true }).click();
      await setEditor(page, '.graphiql-editor-tool .graphiql-editor:not(.hidden)', JSON.stringify({ Authorization: `Bearer ${accessToken}` }));
      const sent = await run(
        page,
        'mutation { sendMessage(input: {content: "Hi from GraphiQL"}) { assistantMessage { id status } } }',
        /"status":"STREAMING"/,
      );
      const messageId = /"id":"([^"]+)"/.exec(sent)![1];

      const streamed = await run(
        page,
        `subscription { messageStream(messageId: "${messageId}") { seq delta done message { status content } usage { totalTokens } } }`,
        /"done":true/,
      );
      expect(streamed).toContain('"status":"COMPLETE"');
      expect(streamed).toContain('Yousaid:\\"HifromGraphiQL\\"');
      expect(streamed).not.toContain('"errors"');
    } finally {
      await browser.close();
    }
  });
});
