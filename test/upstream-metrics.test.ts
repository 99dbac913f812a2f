import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { expectData, startTestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { SendMessageDocument } from './helpers/chat-documents.js';
import { sample, scrape } from './helpers/metrics.js';
import { MockUpstream } from './helpers/upstream.js';

const PRICED = { contextWindow: 128_000, maxOutputTokens: 4096, promptMicrosPerMillion: 150_000, completionMicrosPerMillion: 600_000 };

/**
 * An app whose model is deployed on two providers of its own (ids unique to the test, so that
 * circuits shared through Redis are its own), both the same mock upstream, each called once.
 */
async function startWithTwoProviders() {
  const upstream = await MockUpstream.start();
  const suffix = randomUUID().slice(0, 8);
  const ids = { primary: `primary-${suffix}`, backup: `backup-${suffix}` };
  const key = `sk-fake-provider-key-${suffix}`;
  const baseUrl = `${upstream.mock.url}/v1`;
  const t = await startTestApp({
    UPSTREAM_MAX_ATTEMPTS: '1',
    PROVIDERS_JSON: JSON.stringify([
      { id: ids.primary, kind: 'openai-compatible', baseUrl, apiKey: key },
      { id: ids.backup, kind: 'openai-compatible', baseUrl, apiKey: key },
    ]),
    MODELS_JSON: JSON.stringify([
      { ...PRICED, id: 'chat-model', deployments: [{ provider: ids.primary, model: 'gpt-4o-mini' }, { provider: ids.backup, model: 'gpt-4o' }] },
    ]),
    OPENAI_BASE_URL: baseUrl,
  });
  const url = await t.app.start(0);
  const user = await registerUser(t);
  const send = async (content: string) => {
    const sent = await t.execute(SendMessageDocument, { input: { content, model: 'chat-model', stream: false } }, { token: user.accessToken });
    return expectData(sent).sendMessage.assistantMessage;
  };
  return { upstream, ids, url, send, secrets: [key, upstream.mock.url] };
}

describe('upstream metrics', () => {
  it('count each call by provider, upstream model and outcome, time it, and count the failover it caused', async () => {
    const { upstream, ids, url, send, secrets } = await startWithTwoProviders();
    const prompt = upstream.promptSequence([
      { response: { error: { message: 'down', type: 'server_error' }, status: 503 } },
      { response: { content: 'From the backup.' } },
    ]);

    const before = await scrape(url);
    const reply = await send(prompt);
    const after = await scrape(url);

    expect(reply).toMatchObject({ status: 'COMPLETE', content: 'From the backup.' });
    const grown = (name: string, labels: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels);
    expect({
      primaryError: grown('switchboard_upstream_attempts_total', { provider: ids.primary, model: 'gpt-4o-mini', outcome: 'ERROR' }),
      backupOk: grown('switchboard_upstream_attempts_total', { provider: ids.backup, model: 'gpt-4o', outcome: 'OK' }),
      attempts: grown('switchboard_upstream_attempts_total', {}),
      failover: grown('switchboard_upstream_failovers_total', {
        from_provider: ids.primary,
        to_provider: ids.backup,
        reason: 'server_error',
        mid_stream: 'false',
      }),
      failovers: grown('switchboard_upstream_failovers_total', {}),
      backupFirstToken: grown('switchboard_upstream_first_token_seconds_count', { provider: ids.backup }),
      primaryFirstToken: grown('switchboard_upstream_first_token_seconds_count', { provider: ids.primary }),
      primaryErrorTimed: grown('switchboard_upstream_attempt_duration_seconds_count', { provider: ids.primary, outcome: 'ERROR' }),
      backupOkTimed: grown('switchboard_upstream_attempt_duration_seconds_count', { provider: ids.backup, outcome: 'OK' }),
    }).toEqual({
      primaryError: 1,
      backupOk: 1,
      attempts: 2,
      failover: 1,
      failovers: 1,
      backupFirstToken: 1,
      primaryFirstToken: 0,
      primaryErrorTimed: 1,
      backupOkTimed: 1,
    });
    for (const secret of secrets) expect(after).not.toContain(secret);
  });

  it('label a failover mid_stream once text had reached clients', async () => {
    const { upstream, ids, url, send } = await startWithTwoProviders();
    const prompt = upstream.promptSequence([
      { response: { content: 'abcdefghijklmnopqrstuvwxyz' }, options: { chunkSize: 2, latency: 20, truncateAfterChunks: 5 } },
      { response: { content: 'Restarted on the backup.' } },
    ]);

    const before = await scrape(url);
    const reply = await send(prompt);
    const after = await scrape(url);

    expect(reply).toMatchObject({ status: 'COMPLETE', content: 'Restarted on the backup.' });
    const labels = { from_provider: ids.primary, to_provider: ids.backup, reason: 'cut' };
    const grown = (extra: Record<string, string>) =>
      sample(after, 'switchboard_upstream_failovers_total', { ...labels, ...extra }) -
      sample(before, 'switchboard_upstream_failovers_total', { ...labels, ...extra });
    expect({ midStream: grown({ mid_stream: 'true' }), before: grown({ mid_stream: 'false' }) }).toEqual({ midStream: 1, before: 0 });
    const cut = { provider: ids.primary, model: 'gpt-4o-mini', outcome: 'CUT' };
    expect(sample(after, 'switchboard_upstream_attempts_total', cut) - sample(before, 'switchboard_upstream_attempts_total', cut)).toBe(1);
  });
});
