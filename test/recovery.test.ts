import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { decodeGlobalId } from '../src/graphql/global-id.js';
import { executeOver, expectData, STRONG_PASSWORD, startTestApp, TEST_JWT_SECRET, uniqueEmail, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { MessageDocument, SendMessageDocument, StopGenerationDocument } from './helpers/chat-documents.js';
import { RegisterDocument } from './helpers/documents.js';
import { dataDirFromTemplate } from './helpers/leftovers.js';
import { SERVER_PROCESS_TIMEOUT_MS, spawnServer } from './helpers/server-process.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { followStream } from './helpers/ws.js';

const REPLY = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');

/**
 * Runs a real server process, starts a streaming reply, watches part of it arrive, then SIGKILLs
 * the server. Returns what a second instance needs to take over.
 */
async function crashMidStream(leaseSeconds: string) {
  const upstream = await MockUpstream.start();
  const databaseUrl = inject('databaseUrl');
  const dataDir = dataDirFromTemplate('sb-crash', inject('pgliteDataDirTemplate'));
  const server = await spawnServer({
    ...upstream.env,
    JWT_SECRET: TEST_JWT_SECRET,
    PASSWORD_HASH_COST: '12',
    GENERATION_LEASE_SECONDS: leaseSeconds,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
  });

  const email = uniqueEmail('crash');
  const registered = expectData(
    await executeOver(fetch, server.url, RegisterDocument, { input: { email, password: STRONG_PASSWORD, name: 'Crash' } }),
  );
  const token = registered.register.accessToken;
  const prompt = upstream.prompt({ content: REPLY }, { chunkSize: 4, latency: 60 });
  const sent = expectData(await executeOver(fetch, server.url, SendMessageDocument, { input: { content: prompt } }, token));
  const messageId = sent.sendMessage.assistantMessage.id;

  // Watch a good part of the reply arrive, then kill the server outright once what the next
  // instance will find holds some of it: Redis's replay buffer, or else what a lease checkpoint saved.
  const before = await followStream(server.url, token, messageId, (events) => events.length >= 25);
  const seenBeforeCrash = before.map((e) => e.delta).join('');
  if (!process.env.REDIS_URL) {
    await waitFor('a lease checkpoint to save part of the reply', async () => {
      const node = expectData(await executeOver(fetch, server.url, MessageDocument, { id: messageId }, token)).node;
      return node && 'content' in node && node.content.length > 0;
    });
  }
  server.child.kill('SIGKILL');
  await server.exited;

  /** Another instance on the same data. */
  const takeOver = (env: Record<string, string>) =>
    startTestApp({ ...upstream.env, ...env }, databaseUrl ? {} : { database: { kind: 'pglite', dataDir: join(dataDir, 'pglite') } });
  return { token, messageId, userId: decodeGlobalId(registered.register.user.id).id, seenBeforeCrash, takeOver };
}

async function expectChargedOnce(app: TestApp, userId: string, totalTokens: number) {
  const period = await app.app.db.prisma.quotaPeriod.findFirstOrThrow({ where: { userId } });
  expect(period.reservedTokens).toBe(0n);
  expect(Number(period.usedTokens)).toBe(totalTokens);
  const daily = await app.app.db.prisma.usageDaily.findMany({ where: { userId } });
  expect(daily.map((d) => d.requests)).toEqual([1]);
}

describe('generations whose instance died', () => {
  it('are closed FAILED with their text, usage recorded, quota settled, and waiting subscribers get done', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    // A lease a starved but live server still renews in time; the instance taking over sweeps every second.
    const crash = await crashMidStream('3');
    const t = await crash.takeOver({ GENERATION_LEASE_SECONDS: '1' });
    const url = await t.app.start(0);
    const after = await followStream(url, crash.token, crash.messageId);

    const last = after.at(-1)!;
    expect(last.done).toBe(true);
    expect(last.message).toMatchObject({ status: 'FAILED', usageEstimated: true, finishReason: 'interrupted', error: { code: 'INTERRUPTED' } });
    const content = last.message!.content;
    // Nothing streamed is lost from the stream, and the saved text is a true prefix of the reply.
    expect(after.map((e) => e.delta).join('')).toBe(content);
    expect(content.length).toBeGreaterThan(0);
    expect(REPLY.startsWith(content)).toBe(true);
    expect(content.length).toBeLessThan(REPLY.length);
    if (process.env.REDIS_URL) expect(content.startsWith(crash.seenBeforeCrash)).toBe(true);
    expect(last.message!.promptTokens).toBeGreaterThan(0);
    expect(last.message!.completionTokens).toBeGreaterThan(0);
    await expectChargedOnce(t, crash.userId, last.message!.totalTokens);
  });

  // The embedded server closes every orphan at start-up, so only a shared database leaves one to
  // stop; with a lease that outlasts the reply, only Redis's replay buffer keeps its text.
  it.skipIf(!inject('databaseUrl') || !process.env.REDIS_URL)('can be stopped: no instance answers, so the message is closed STOPPED here, usage and all', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const crash = await crashMidStream('600');
    const t = await crash.takeOver({ GENERATION_LEASE_SECONDS: '600' });
    const stopped = expectData(await t.execute(StopGenerationDocument, { messageId: crash.messageId }, { token: crash.token })).stopGeneration;
    expect(stopped).toMatchObject({ status: 'STOPPED', finishReason: 'stop_requested', usageEstimated: true });
    expect(stopped.content.length).toBeGreaterThan(0);
    expect(REPLY.startsWith(stopped.content)).toBe(true);
    await expectChargedOnce(t, crash.userId, stopped.promptTokens + stopped.completionTokens);
  });

  it('records a generation once when it is closed elsewhere while it still runs, and stops it', async () => {
    const upstream = await MockUpstream.start();
    // Long enough that no other test server sweeps this live generation on a busy machine.
    const t = await startTestApp({ ...upstream.env, GENERATION_LEASE_SECONDS: '3' });
    const user = await registerUser(t);
    // About 8 s of reply: far longer than the runner may take to notice it lost the message.
    const prompt = upstream.prompt({ content: REPLY }, { chunkSize: 1, latency: 20 });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken }));
    const messageId = decodeGlobalId(sent.sendMessage.assistantMessage.id).id;
    await upstream.waitForRequest(prompt);

    // As another instance would after this one's lease lapsed.
    const running = await t.app.db.prisma.message.findUniqueOrThrow({ where: { id: messageId } });
    expect(await t.app.recovery.close(running, 'FAILED')).toBe(true);
    expect(await t.app.recovery.close(running, 'FAILED')).toBe(false);
    // The runner notices at its next lease renewal and stops without recording a second time.
    await waitFor('the runner to give the generation up', () => t.app.runner.size === 0);

    const message = await t.app.db.prisma.message.findUniqueOrThrow({ where: { id: messageId } });
    expect(message.status).toBe('FAILED');
    expect(message.errorCode).toBe('INTERRUPTED');
    await expectChargedOnce(t, message.userId, message.totalTokens);
  });
});
