import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { tempDir, trackChild } from './leftovers.js';
import { waitFor } from './wait.js';

/**
 * A redis-server of the test's own, on a free loopback port, with nothing persisted: killing and
 * starting it again is a Redis restart that lost everything. Killed when the test ends.
 */
export async function startRedisServer(): Promise<{ url: string; kill(): Promise<void>; start(): Promise<void> }> {
  const port = await freePort();
  const dir = tempDir('redis');
  let stop: (() => Promise<void>) | undefined;
  const start = async () => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdio: 'ignore',
    });
    const closed = trackChild(child);
    stop = async () => {
      child.kill('SIGKILL');
      await closed;
    };
    const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    await waitFor(`redis-server on port ${port}`, async () => {
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } catch {
        probe.disconnect();
        return false;
      }
    });
    probe.disconnect();
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    kill: async () => stop?.(),
    start,
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
