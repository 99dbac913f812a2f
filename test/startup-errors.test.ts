import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { TEST_JWT_SECRET } from './helpers/app.js';
import { dataDirFromTemplate, registerLeftover } from './helpers/leftovers.js';
import { run, type RunResult } from './helpers/processes.js';
import { SERVER_PROCESS_TIMEOUT_MS } from './helpers/server-process.js';

// A server that cannot start says why in one line and exits 1, releasing its data directory.
async function startServer(env: Record<string, string>): Promise<RunResult & { dataDir: string }> {
  const dataDir = dataDirFromTemplate('sb-start', inject('pgliteDataDirTemplate'));
  const result = await run(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', JWT_SECRET: TEST_JWT_SECRET, DATA_DIR: dataDir, ...env },
  });
  return { ...result, dataDir };
}

function fatalLines(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .filter((line) => line.level >= 60)
    .map((line) => line.msg);
}

function expectNoStackTrace(result: RunResult) {
  expect(result.stdout + result.stderr).not.toMatch(/\bat .+:\d+:\d+\)?$/m);
  expect(result.stdout).not.toContain('"frames"');
}

describe('start-up refusals', () => {
  it('names a port that is already taken and exits 1', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const holder = createServer().listen(0, '127.0.0.1');
    await once(holder, 'listening');
    registerLeftover(() => new Promise((resolve) => holder.close(resolve)));
    const { port } = holder.address() as AddressInfo;

    const result = await startServer({ PORT: String(port) });
    expect(result.status, result.stderr).toBe(1);
    expect(fatalLines(result.stdout)).toEqual([`Port ${port} is already in use (set PORT to another port)`]);
    expectNoStackTrace(result);
    expect(existsSync(join(result.dataDir, 'pglite', 'switchboard.pid'))).toBe(false);
  });

  it('names REDIS_URL and its address, never its password, when Redis is unreachable', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const result = await startServer({ REDIS_URL: 'redis://:hunter2-secret@127.0.0.1:1' });
    expect(result.status, result.stderr).toBe(1);
    const [line, ...others] = fatalLines(result.stdout);
    expect(others).toEqual([]);
    expect(line).toMatch(/^REDIS_URL: cannot connect to Redis at 127\.0\.0\.1:1 \(ECONNREFUSED\)$/);
    expect(result.stdout + result.stderr).not.toContain('hunter2');
    expectNoStackTrace(result);
    expect(existsSync(join(result.dataDir, 'pglite', 'switchboard.pid'))).toBe(false);
  });
});
