import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { GENEROUS_LIMITS } from './limits.js';

export interface ServerProcess {
  child: ChildProcess;
  url: URL;
  /** What the server wrote to stdout (up to listening only, with `keepOutput: false`). */
  output(): string;
  exited: Promise<number | null>;
  /** SIGTERM, then waits for the exit code. */
  stop(): Promise<number | null>;
}

export interface SpawnOptions {
  /** Extra flags for node itself (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** false: stop collecting stdout once listening (request logs under load would pile up). */
  keepOutput?: boolean;
}

/**
 * Runs `src/main.ts` as its own process, as `npm start` does, with exactly the given environment.
 * Used by tests that need a real process (crash, SIGTERM) and by the benchmarks.
 */
export async function spawnServer(env: Record<string, string | undefined>, options: SpawnOptions = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', 'src/main.ts'], {
    cwd: join(import.meta.dirname, '..', '..'),
    env: { PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', ...GENEROUS_LIMITS, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  let listening = false;
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const url = await new Promise<URL>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (listening && options.keepOutput === false) return;
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)"/.exec(output);
      if (match?.[1] && !listening) {
        listening = true;
        resolve(new URL(match[1]));
      }
    });
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening: ${output}`)));
  });
  return {
    child,
    url,
    output: () => output,
    exited,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
