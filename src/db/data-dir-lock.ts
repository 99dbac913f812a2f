import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StartupError } from '../errors.js';

/** The embedded database's directory is held by another live process. */
export class DataDirInUseError extends StartupError {
  constructor(dir: string, pid: number) {
    super(
      `${dir} is in use by process ${pid}: the embedded database serves one process at a time. ` +
        'Stop that process, or set DATABASE_URL to run several instances on PostgreSQL.',
    );
  }

  override name = 'DataDirInUseError';
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * PGlite files opened by two processes at once get corrupted, and start-up recovery assumes that
 * whatever still runs in them belongs to a dead process. A pid file makes both true: a second
 * process is refused, and a lock left by a crashed one is taken over. Returns the release.
 */
export function lockDataDir(dir: string): () => void {
  const file = join(dir, 'switchboard.pid');
  try {
    writeFileSync(file, String(process.pid), { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const holder = Number.parseInt(readFileSync(file, 'utf8'), 10);
    // Our own pid in the file is a lock left by a crashed earlier run that had the same pid,
    // as every run does in a container where the server is pid 1.
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
      throw new DataDirInUseError(dir, holder);
    }
    writeFileSync(file, String(process.pid));
  }
  return () => rmSync(file, { force: true });
}
