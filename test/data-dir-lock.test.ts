import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataDirInUseError, lockDataDir } from '../src/db/data-dir-lock.js';
import { tempDir, trackChild } from './helpers/leftovers.js';
import { run } from './helpers/processes.js';

const lockFile = (dir: string) => join(dir, 'switchboard.pid');

describe('the embedded data directory lock', () => {
  it('refuses a directory a live process holds, and takes it over once that process is gone', async () => {
    const dir = tempDir('sb-lock');
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)']);
    const closed = trackChild(holder);
    writeFileSync(lockFile(dir), String(holder.pid));
    expect(() => lockDataDir(dir)).toThrow(DataDirInUseError);
    expect(() => lockDataDir(dir)).toThrow(`in use by process ${holder.pid}`);

    holder.kill('SIGKILL');
    await closed;
    const release = lockDataDir(dir);
    expect(readFileSync(lockFile(dir), 'utf8')).toBe(String(process.pid));
    release();
    expect(existsSync(lockFile(dir))).toBe(false);
  });

  it('takes over a lock with its own pid (a crashed earlier run, as pid 1 in a container always is)', () => {
    const dir = tempDir('sb-lock');
    writeFileSync(lockFile(dir), String(process.pid));
    const release = lockDataDir(dir);
    release();
    expect(existsSync(lockFile(dir))).toBe(false);
  });

  it('locks a fresh directory and a second lock in another process is refused', async () => {
    const dir = tempDir('sb-lock');
    const release = lockDataDir(dir);
    try {
      const script = `import('${join(import.meta.dirname, '..', 'src', 'db', 'data-dir-lock.ts')}').then((m) => { try { m.lockDataDir(${JSON.stringify(dir)}); process.exit(0) } catch (e) { console.log(e.name); process.exit(3) } })`;
      const { status, stdout, stderr } = await run(process.execPath, ['--import', 'tsx', '-e', script], { env: process.env });
      expect(status, stderr).toBe(3);
      expect(stdout.trim()).toBe('DataDirInUseError');
    } finally {
      release();
    }
  });
});
