import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface ServerProcess {
  child: ChildProcess;
  url: URL;
  /** Everything the server wrote to stdout so far. */
  output(): string;
  exited: Promise<number | null>;
}

/** Runs `src/main.ts` as its own process, as `npm start` does, with exactly the given environment. */
export async function spawnServer(env: Record<string, string | undefined>): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: join(import.meta.dirname, '..', '..'),
    env: { PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const url = await new Promise<URL>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)"/.exec(output);
      if (match?.[1]) resolve(new URL(match[1]));
    });
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening: ${output}`)));
  });
  return { child, url, output: () => output, exited };
}
