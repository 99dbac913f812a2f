import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { sendFramesPerTick } from '../src/http/frames-per-tick.js';

const nextTick = () => new Promise((resolve) => process.nextTick(resolve));

describe('frames sent within one tick', () => {
  it('leave in one write, in the order they were sent, and the next tick starts another', async () => {
    const calls: string[] = [];
    const tcp = { cork: () => calls.push('cork'), uncork: () => calls.push('uncork') } as unknown as Socket;
    const socket = { send: (data: string) => calls.push(`send ${data}`) } as unknown as WebSocket;
    sendFramesPerTick(socket, tcp);

    socket.send('a');
    socket.send('b');
    // Frames from the promise jobs of the same tick (the events of other streams) join them.
    await Promise.resolve();
    socket.send('c');
    await nextTick();
    socket.send('d');
    await nextTick();

    expect(calls).toEqual(['cork', 'send a', 'send b', 'send c', 'uncork', 'cork', 'send d', 'uncork']);
  });
});
