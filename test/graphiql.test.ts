import { existsSync } from 'node:fs';
import { chromium, type Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { serveForFile, uniqueEmail, type TestApp } from './helpers/app.js';

// The newcomer's path in a real browser: GraphiQL, sign up, send a message, watch
// the reply arrive through a subscription. Skipped when no Chromium is installed, except when
// CHROMIUM_PATH names one (as .ci/run does after scripts/ensure-browser.sh): then it must run.
const browserPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveBrowser = existsSync(browserPath);
if (!haveBrowser && process.env.CHROMIUM_PATH) throw new Error(`CHROMIUM_PATH=${browserPath} does not exist`);

let url: URL;
serveForFile((_t: TestApp, address) => (url = address));

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

describe.skipIf(!haveBrowser)('GraphiQL in a browser', () => {
  it('signs up, sends a message and streams the reply through a subscription', async () => {
    const browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      await page.goto(url.toString());
      await page.waitForSelector('.graphiql-execute-button', { timeout: 20_000 });

      const email = uniqueEmail('graphiql');
      const signedUp = await run(
        page,
        `mutation { register(input: {email: "${email}", password: "correct horse battery", name: "Newcomer"}) { accessToken } }`,
        /"accessToken":"[^"]+"/,
      );
      const accessToken = /"accessToken":"([^"]+)"/.exec(signedUp)![1];

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
        `subscription { messageStream(messageId: "${messageId}") { seq delta done message { status content } } }`,
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
