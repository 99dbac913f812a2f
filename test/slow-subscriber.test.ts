import { print } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { decodeGlobalId } from '../src/global-id.js';
import { registerUser } from './helpers/accounts.js';
import { expectData, startTestApp } from './helpers/app.js';
import { MessageStreamDocument, SendMessageDocument } from './helpers/chat-documents.js';
import { registerLeftover } from './helpers/leftovers.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { wsUrl, type MessageStreamEvent } from './helpers/ws.js';

const CHUNKS = 600;
const CHUNK = 'x'.repeat(9_999) + '\n';

describe('a subscriber that stops reading', () => {
  it('costs the server a bounded queue: its pending text is merged into one event, which says so', async () => {
    const upstream = await MockUpstream.start();
    const t = await startTestApp(upstream.env);
    const url = await t.app.start(0);
    const user = await registerUser(t);
    const reply = CHUNK.repeat(CHUNKS);
    const prompt = upstream.prompt({ content: reply }, { chunkSize: CHUNK.length, latency: 2 });
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken })).sendMessage;

    // The real graphql-ws client over a socket whose TCP reading the test can pause.
    const sockets: WebSocket[] = [];
    const client = createClient({
      url: wsUrl(url),
      webSocketImpl: class extends WebSocket {
        constructor(address: string, protocols?: string | string[]) {
          super(address, protocols);
          sockets.push(this);
        }
      },
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${user.accessToken}` },
    });
    registerLeftover(() => client.dispose());
    const events: MessageStreamEvent[] = [];
    let completed!: () => void;
    const complete = new Promise<void>((resolve) => (completed = resolve));
    client.subscribe(
      { query: print(MessageStreamDocument), variables: { messageId: sent.assistantMessage.id } },
      { next: (result) => void events.push((result.data as { messageStream: MessageStreamEvent }).messageStream), error: completed, complete: completed },
    );
    await waitFor('the first event', () => events.length > 0);
    const tcp = (sockets[0] as unknown as { _socket: import('node:net').Socket })._socket;
    tcp.pause();

    // Its done is handed to the subscribers here as soon as the replay store has it.
    const messageId = decodeGlobalId(sent.assistantMessage.id).id;
    await waitFor('the end of the reply', async () => (await t.app.hub.buffered(messageId)).at(-1)?.done);
    // Everything was published while the reader read nothing: what waits for it stays small.
    // At most 16 events kept apart, the rest merged into the last, and done.
    expect(t.app.hub.queuedEvents).toBeLessThanOrEqual(17);

    tcp.resume();
    await complete;
    expect(events.map((e) => e.delta).join('')).toBe(reply);
    expect(events.at(-1)?.done).toBe(true);
    const merged = events.filter((e) => e.firstSeq < e.seq);
    expect(merged.length).toBeGreaterThan(0);
    // Positions still account for every event: each starts right after the one before.
    events.forEach((e, i) => expect(e.firstSeq).toBe(i === 0 ? 1 : events[i - 1]!.seq + 1));
  });
});
