import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { registerLeftover } from './leftovers.js';

/**
 * An HTTP server on a free loopback port, for the small local stand-ins of third-party APIs.
 * It is closed at the end of the test (or file) that started it, unless stopped first.
 */
export async function startLocalServer(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const server = createServer(handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const stop = registerLeftover(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stop };
}
