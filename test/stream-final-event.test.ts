import { print } from 'graphql';
import { describe, expect, it } from 'vitest';
import { registerUser } from './helpers/accounts.js';
import { expectData, startTestApp } from './helpers/app.js';
import { MessageStreamDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { connectWs, type MessageStreamEvent } from './helpers/ws.js';

const SUBSCRIBERS = 60;
const PER_CONNECTION = 20;

describe('the final event of a stream', () => {
  it('reads the final message once for all the subscribers of an instance, not once per subscriber', async () => {
    const upstream = await MockUpstream.start();
    const statements: string[] = [];
    const t = await startTestApp(upstream.env, { onQuery: (sql) => statements.push(sql) });
    const url = await t.app.start(0);
    const user = await registerUser(t);
    const reply = 'one final row for every subscriber '.repeat(4);
    const prompt = upstream.prompt({ content: reply }, { chunkSize: 4, latency: 60 });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken })).sendMessage;

    const received: MessageStreamEvent[][] = Array.from({ length: SUBSCRIBERS }, () => []);
    const clients = Array.from({ length: SUBSCRIBERS / PER_CONNECTION }, () => connectWs(url, user.accessToken));
    received.forEach((events, index) =>
      clients[Math.floor(index / PER_CONNECTION)]!.subscribe(
        { query: print(MessageStreamDocument), variables: { messageId: sent.assistantMessage.id } },
        { next: (result) => void events.push((result.data as { messageStream: MessageStreamEvent }).messageStream), error: () => {}, complete: () => {} },
      ),
    );
    await waitFor('every subscriber to receive text', () => received.every((events) => events.length > 0));
    const from = statements.length;
    await waitFor('every subscriber to receive done', () => received.every((events) => events.at(-1)?.done));

    for (const events of received) {
      expect(events.map((e) => e.delta).join('')).toBe(reply);
      expect(events.at(-1)).toMatchObject({ message: { status: 'COMPLETE', content: reply }, usage: { estimated: false } });
    }
    // Prisma batches the findUniques of one tick into one statement: what counts is the rows asked for.
    const messageReads = statements.slice(from).filter((sql) => /^SELECT/i.test(sql.trim()) && sql.includes('FROM "public"."Message"'));
    const rowsAskedFor = messageReads.reduce((sum, sql) => sum + (sql.match(/\$\d+/g)?.length ?? 0), 0);
    expect(rowsAskedFor).toBeLessThanOrEqual(2);
  });
});
