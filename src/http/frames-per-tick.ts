import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/**
 * Frames a WebSocket sends within one tick leave in one write: its TCP socket is corked at the
 * first and uncorked once the tick's promise jobs are done. A socket carrying several streams
 * then costs one system call per tick, not one per event; the frames, and their order, are the same.
 */
export function sendFramesPerTick(socket: WebSocket, tcp: Socket): void {
  let corked = false;
  const uncork = () => {
    corked = false;
    tcp.uncork();
  };
  const send = socket.send.bind(socket) as (...args: unknown[]) => void;
  socket.send = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      tcp.cork();
      process.nextTick(uncork);
    }
    send(...args);
  }) as WebSocket['send'];
}
