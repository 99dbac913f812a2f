import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { print } from 'graphql';
import { describe, expect, inject, it } from 'vitest';
import { expectData, STRONG_PASSWORD, startTestApp, uniqueEmail } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { MessageStreamDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { RegisterDocument } from './helpers/documents.js';
import { spawnServer } from './helpers/server-process.js';
import { MockUpstream } from './helpers/upstream.js';
import { connectWs } from './helpers/ws.js';

describe('graceful shutdown', () => {
  it('lets in-flight requests finish, closes WebSockets with 1001 and refuses new connections', async () => {
    // A costly password hash keeps the register request in flight while stop() begins.
    const t = await startTestApp({ PASSWORD_HASH_COST: '16' });
    const url = await t.app.start(0);
    const user = await registerUser(t);
    const socket = connectWs(url, user.accessToken);
    await new Promise((resolve) => socket.on('connected', resolve));

    const inFlight = fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: print(RegisterDocument),
        variables: { input: { email: uniqueEmail(), password: STRONG_PASSWORD, name: 'Late' } },
      }),
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    const stopped = t.app.stop();

    const response = await inFlight;
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body.errors).toBeUndefined();
    expect(body.data.register.user.name).toBe('Late');
    expect((await socket.closed).code).toBe(1001);
    await stopped;
    await expect(fetch(new URL('/health', url))).rejects.toThrow();
  });

  it('stops running generations cleanly: subscribers get done, the message is STOPPED with its text', async () => {
    const upstream = await MockUpstream.start();
    const t = await startTestApp(upstream.env);
    const url = await t.app.start(0);
    try {
      const user = await registerUser(t);
      const prompt = upstream.prompt({ content: 'a long reply that is still streaming when the server stops' }, { chunkSize: 3, latency: 50 });
      const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken }));
      const client = connectWs(url, user.accessToken);
      const events: Array<{ delta: string; done: boolean; message?: { status: string; content: string } | null }> = [];
      const streamed = (async () => {
        for await (const result of client.iterate({
          query: print(MessageStreamDocument),
          variables: { messageId: sent.sendMessage.assistantMessage.id },
        })) {
          events.push((result.data as { messageStream: (typeof events)[number] }).messageStream);
        }
      })().catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 300));
      await t.app.stop();
      await streamed;
      const last = events.at(-1);
      expect(last?.done).toBe(true);
      expect(last?.message?.status).toBe('STOPPED');
      expect(last?.message?.content).toBe(events.map((e) => e.delta).join(''));
      expect(last?.message?.content.length).toBeGreaterThan(0);
      await client.dispose();
    } finally {
      await upstream.stop();
    }
  });

  it('exits 0 on SIGTERM', async () => {
    const databaseUrl = inject('databaseUrl');
    const server = await spawnServer({
      DATA_DIR: mkdtempSync(join(tmpdir(), 'sb-main-')),
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    });
    expect((await fetch(new URL('/health', server.url))).status).toBe(200);
    expect(await server.stop()).toBe(0);
    expect(server.output()).toContain('shutting down');
  });

  it('refuses a second server on the same embedded data directory, and names the holder', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sb-main-'));
    const first = await spawnServer({ DATA_DIR: dataDir });
    try {
      await expect(spawnServer({ DATA_DIR: dataDir })).rejects.toThrow(`in use by process ${first.child.pid}`);
    } finally {
      expect(await first.stop()).toBe(0);
    }
    // A clean stop releases the directory for the next server.
    const next = await spawnServer({ DATA_DIR: dataDir });
    expect(await next.stop()).toBe(0);
  });
});
