import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalId } from '../src/global-id.js';
import { expectData, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { SendMessageDocument } from './helpers/chat-documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';

const CHECKPOINT = /UPDATE\s+("public"\.)?"Message"\s+SET\s+"content"/;

describe('lease checkpoints of a long reply', () => {
  let upstream: MockUpstream;
  let t: TestApp;
  const checkpoints: Array<{ sql: string; params: string }> = [];
  beforeAll(async () => {
    upstream = await MockUpstream.start();
    // A one-second lease: a checkpoint every third of a second while the reply streams.
    t = await startTestApp({ ...upstream.env, GENERATION_LEASE_SECONDS: '1' }, {
      onQuery: (sql, params) => {
        if (CHECKPOINT.test(sql)) checkpoints.push({ sql, params });
      },
    });
  });
  afterAll(async () => {
    await t?.stop();
    await upstream?.stop();
  });

  it('write only what came since the last one: bytes written grow linearly with the reply', async () => {
    const reply = Array.from({ length: 300 }, (_, i) => `token${String(i).padStart(4, '0')} `).join('');
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: reply }, { chunkSize: 20, latency: 15 }, 'checkpoints');
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken })).sendMessage;
    const id = decodeGlobalId(sent.assistantMessage.id).id;
    const row = await waitFor('the reply to be recorded', async () => {
      const message = await t.app.db.prisma.message.findUnique({ where: { id } });
      return message?.status === 'COMPLETE' ? message : undefined;
    });
    expect(row.content).toBe(reply);
    // Several checkpoints, together sending about the reply once (rewriting the whole text each
    // time would send several times as much).
    expect(checkpoints.length).toBeGreaterThanOrEqual(4);
    const bytes = checkpoints.reduce((sum, c) => sum + Buffer.byteLength(c.params), 0);
    expect(bytes).toBeLessThan(reply.length * 1.3 + 200 * checkpoints.length);
  });
});
