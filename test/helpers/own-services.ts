import { spawn } from 'node:child_process';
import { chownSync, readdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { registerLeftover, tempDir, trackChild } from './leftovers.js';
import { run } from './processes.js';
import { waitFor } from './wait.js';

// Servers of a test's own, for faults the shared PostgreSQL and Redis must never suffer (restarts, refusals).

/**
 * A redis-server of the test's own, on a free loopback port, with nothing persisted: killing and
 * starting it again is a Redis restart that lost everything. Killed when the test ends.
 */
export async function startRedisServer(): Promise<{ url: string; kill(): Promise<void>; start(): Promise<void>; pause(): void; resume(): void }> {
  const port = await freePort();
  const dir = tempDir('redis');
  let stop: (() => Promise<void>) | undefined;
  let signal: ((name: NodeJS.Signals) => void) | undefined;
  const start = async () => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdio: 'ignore',
    });
    const closed = trackChild(child);
    stop = async () => {
      child.kill('SIGKILL');
      await closed;
    };
    signal = (name) => child.kill(name);
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
    // A paused Redis keeps its connections and answers nothing: commands wait, they do not fail.
    pause: () => signal?.('SIGSTOP'),
    resume: () => signal?.('SIGCONT'),
  };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A PostgreSQL cluster of the test's own (never the shared one), which it may stop and start:
 * initdb and pg_ctl as the postgres user, on a free port. Stopped and removed when the test ends.
 */
export async function startOwnPostgres(): Promise<{ url: string; start(): Promise<void>; stop(): Promise<void> }> {
  const bin = join('/usr/lib/postgresql', readdirSync('/usr/lib/postgresql').sort().at(-1)!, 'bin');
  const dir = tempDir('sb-fault-pg');
  const { uid, gid } = await postgresIds();
  chownSync(dir, uid, gid);
  const port = await freePort();
  const asPostgres = async (command: string, ...args: string[]) => {
    const result = await run('runuser', ['-u', 'postgres', '--', join(bin, command), ...args], { env: { PATH: process.env.PATH } });
    if (result.status !== 0) throw new Error(`${command} failed (${result.status}): ${result.stderr}`);
  };
  await asPostgres('initdb', '-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres');
  const pgCtl = (...args: string[]) => asPostgres('pg_ctl', '-D', join(dir, 'data'), ...args);
  const start = () => pgCtl('-o', `-p ${port} -k ${dir}`, '-l', join(dir, 'log'), '-w', 'start');
  await start();
  registerLeftover(() => pgCtl('-m', 'immediate', '-w', 'stop').catch(() => {}));
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, start, stop: () => pgCtl('-m', 'fast', '-w', 'stop') };
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all(['-u', '-g'].map(async (flag) => Number((await run('id', [flag, 'postgres'], { env: { PATH: process.env.PATH } })).stdout.trim())));
  return { uid: uid!, gid: gid! };
}
