import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { trackChild } from './leftovers.js';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface RunResult {
  /** The exit code, or the signal that ended the process. */
  status: number | NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to its end and collects its output. Unlike spawnSync it leaves the worker's
 * event loop free (so the test's timeout still applies), and unlike an execFile timeout it sets
 * no clock of its own: a process still running when the test ends is killed as a leftover.
 */
export async function run(command: string, args: string[], options: { cwd?: string; env: NodeJS.ProcessEnv }): Promise<RunResult> {
  const child = spawn(command, args, { cwd: options.cwd ?? ROOT, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const status = await trackChild(child);
  return { status, stdout, stderr };
}
