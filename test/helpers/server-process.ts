import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { trackChild } from './leftovers.js';
import { GENEROUS_LIMITS } from './limits.js';
import { ROOT } from './processes.js';

export interface ServerProcess {
  child: ChildProcess;
  url: URL;
  /** What the server wrote to stdout (up to listening only, with `keepOutput: false`). */
  output(): string;
  /** Resolves once the process has exited and its output has been read: the exit code or signal. */
  exited: Promise<number | NodeJS.Signals | null>;
  /** SIGTERM, then waits for the exit code. */
  stop(): Promise<number | NodeJS.Signals | null>;
}

export interface SpawnOptions {
  /** Extra flags for node itself (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** false: stop collecting stdout once listening (request logs under load would pile up). */
  keepOutput?: boolean;
}

/**
 * The timeout for a test that starts server processes. Their start-up is real time no event can
 * shorten: loading the TypeScript sources and creating an embedded database took up to 36 s per
 * process on a busy 2-core machine (88 s for the test that starts two), against a few when idle.
 */
export const SERVER_PROCESS_TIMEOUT_MS = 180_000;

const exitWithParent = pathToFileURL(join(ROOT, 'test', 'helpers', 'exit-with-parent.ts')).href;

/**
 * Runs `src/main.ts` as its own process, as `npm start` does, with exactly the given environment.
 * Used by tests that need a real process (crash, SIGTERM) and by the benchmarks. A server the
 * test has not stopped by its end is killed (see leftovers.ts).
 */
export async function spawnServer(env: Record<string, string | undefined>, options: SpawnOptions = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', '--import', exitWithParent, 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', ...GENEROUS_LIMITS, ...env },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const closed = trackChild(child);
  let output = '';
  let listening = false;
  const url = await new Promise<URL>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (listening && options.keepOutput === false) return;
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)"/.exec(output);
      if (match?.[1] && !listening) {
        listening = true;
        resolve(new URL(match[1]));
      }
    });
    void closed.then((status) => reject(new Error(`server exited (${status}) before listening: ${output}`)));
  });
  return {
    child,
    url,
    output: () => output,
    exited: closed,
    stop: () => {
      child.kill('SIGTERM');
      return closed;
    },
  };
}
