import type { ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Everything a test starts (apps, server processes, mock upstreams, temporary directories) is
 * registered here with how to dispose of it. The hooks in dispose-leftovers.ts dispose of
 * whatever a test left when it ends, passed or failed, and of what a file's beforeAll started
 * when the file ends. No vitest import here: the benchmarks share these helpers.
 */
type Dispose = () => unknown;

const fileScope: Dispose[] = [];
let testScope: Dispose[] | undefined;

/**
 * Registers `dispose` for the running test (or, outside a test, the file) and returns it made
 * idempotent: calling it early disposes now and unregisters it.
 */
export function registerLeftover(dispose: Dispose): () => Promise<void> {
  const scope = testScope ?? fileScope;
  let disposed: Promise<void> | undefined;
  const once = () =>
    (disposed ??= (async () => {
      const index = scope.indexOf(once);
      if (index >= 0) scope.splice(index, 1);
      await dispose();
    })());
  scope.push(once);
  return once;
}

/** Called by the hooks: from here until disposeLeftovers('test'), leftovers belong to the test. */
export function beginTest(): void {
  testScope = [];
}

/** Disposes in reverse order (a server before the directory it runs in); every one, even if some throw. */
export async function disposeLeftovers(scope: 'test' | 'file'): Promise<void> {
  const items = scope === 'test' ? (testScope ?? []) : fileScope;
  const errors: unknown[] = [];
  while (items.length > 0) {
    await Promise.resolve(items.at(-1)!()).catch((error: unknown) => errors.push(error));
  }
  if (scope === 'test') testScope = undefined;
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} leftovers failed to dispose`);
}

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
// Hooks do not run when the worker exits abruptly (process.exit, a crash): kill and remove
// synchronously then. A worker killed outright is covered by the children themselves (see
// exit-with-parent.ts).
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * Registers a child process: a leftover one is killed outright (a test that wants a graceful
 * stop does it itself). Returns its end: the exit code, or the signal that ended it.
 */
export function trackChild(child: ChildProcess): Promise<number | NodeJS.Signals | null> {
  liveChildren.add(child);
  // 'close', not 'exit': by then the child's output has been read to the end.
  const closed = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once('close', (code, signal) => {
      liveChildren.delete(child);
      resolve(code ?? signal);
    }),
  );
  registerLeftover(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await closed;
  });
  return closed;
}

/**
 * A temporary DATA_DIR whose embedded database is already created and migrated (a copy of the
 * suite's template): a server process then starts in seconds instead of creating a cluster.
 */
export function dataDirFromTemplate(prefix: string, template: string): string {
  const dir = tempDir(prefix);
  cpSync(template, join(dir, 'pglite'), { recursive: true });
  return dir;
}

/** A fresh directory under the system temp dir (or `parent`), removed when the test (or file) ends. */
export function tempDir(prefix: string, parent = tmpdir()): string {
  const dir = mkdtempSync(join(parent, `${prefix}-`));
  liveDirs.add(dir);
  registerLeftover(() => {
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  });
  return dir;
}
