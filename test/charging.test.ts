import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalId } from '../src/graphql/global-id.js';
import { expectData, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { SendMessageDocument, StopGenerationDocument } from './helpers/chat-documents.js';
import { captureLogs } from './helpers/logs.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';

let upstream: MockUpstream;
let t: TestApp;
const logs = captureLogs('info');
beforeAll(async () => {
  upstream = await MockUpstream.start();
  t = await startTestApp(
    {
      ...upstream.env,
      UPSTREAM_TIMEOUT_SECONDS: '1',
      UPSTREAM_MAX_ATTEMPTS: '3',
      MODELS_JSON: JSON.stringify([
        { id: 'gpt-4o-mini', contextWindow: 128_000, maxOutputTokens: 16_384, promptMicrosPerMillion: 150_000, completionMicrosPerMillion: 600_000 },
      ]),
    },
    { logger: logs.logger },
  );
});
afterAll(async () => {
  await t.stop();
  await upstream.stop();
});

const prisma = () => t.app.db.prisma;
const logged = (message: string, messageId: string) => logs.entries().filter((e) => e.msg === message && e.messageId === messageId);

async function send(token: string, content: string) {
  const sent = expectData(await t.execute(SendMessageDocument, { input: { content } }, { token }));
  return { globalId: sent.sendMessage.assistantMessage.id, id: decodeGlobalId(sent.sendMessage.assistantMessage.id).id };
}

describe('a call that was never sent', () => {
  it('costs nothing when the reply is stopped during a retry wait, and the retry is never sent', async () => {
    const user = await registerUser(t);
    const prompt = upstream.promptSequence([
      { response: { error: { message: 'slow down', type: 'rate_limit_error' }, status: 429, retryAfter: 8 } },
      { response: { content: 'never asked for' } },
    ]);
    const message = await send(user.accessToken, prompt);
    await waitFor('the runner to wait before its retry', () => logged('retrying upstream call', message.id).length === 1);
    const stopped = expectData(await t.execute(StopGenerationDocument, { messageId: message.globalId }, { token: user.accessToken }));
    expect(stopped.stopGeneration).toMatchObject({ status: 'STOPPED', content: '', promptTokens: 0, completionTokens: 0 });

    const stored = await prisma().message.findUniqueOrThrow({ where: { id: message.id } });
    expect(stored).toMatchObject({ status: 'STOPPED', totalTokens: 0, costMicros: 0n, usageEstimated: false });
    const reservation = await prisma().reservation.findFirstOrThrow({ where: { messageId: message.id } });
    expect(reservation).toMatchObject({ settledBy: 'RUN', chargedMicros: 0n });
    expect(upstream.requestsFor(prompt)).toHaveLength(1);
  });
});

describe('an attempt that timed out and was retried', () => {
  it('is recorded with its estimate as unbilled, and the user pays for the attempt that answered', async () => {
    const user = await registerUser(t);
    const unbilled = async () => (await t.app.metrics.generation.unbilledAttemptTokens.get()).values.find((v) => v.labels.model === 'gpt-4o-mini')?.value ?? 0;
    const before = await unbilled();
    const prompt = upstream.promptSequence([
      // Nothing within the 1 s idle timeout.
      { response: { content: 'too late' }, options: { streamingProfile: { ttft: 4000 } } },
      { response: { content: 'on time', usage: { prompt_tokens: 30, completion_tokens: 3 } } },
    ]);
    const message = await send(user.accessToken, prompt);
    const stored = await waitFor('the reply to complete', async () => {
      const row = await prisma().message.findUniqueOrThrow({ where: { id: message.id } });
      return row.status === 'COMPLETE' ? row : undefined;
    });
    expect(stored).toMatchObject({ content: 'on time', promptTokens: 30, completionTokens: 3, usageEstimated: false });
    expect(upstream.requestsFor(prompt)).toHaveLength(2);

    const [attempt] = logged('an upstream attempt timed out: the provider may bill its prompt, the user is not charged for it', message.id);
    expect(attempt).toMatchObject({ attempt: 1, model: 'gpt-4o-mini' });
    expect(attempt!.promptEstimate).toBeGreaterThan(0);
    expect((await unbilled()) - before).toBe(attempt!.promptEstimate);
  });
});
