import { createServer } from 'node:net';
import { StartupError } from '../errors.js';

/**
 * Refuses a port that is taken or not allowed, before the real server tries it: ws re-emits the
 * HTTP server's listen errors on the WebSocket server, where graphql-ws prints them with a stack.
 * Checked once before anything is created (a new embedded database takes seconds and files) and
 * again when listening, for a port taken in between.
 */
export async function ensurePortFree(port: number, host: string): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (error) => reject(listenError(error, port)));
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/** A taken or forbidden port as the one line an operator needs; other errors as they are. */
export function listenError(error: NodeJS.ErrnoException, port: number): Error {
  if (error.code === 'EADDRINUSE') return new StartupError(`Port ${port} is already in use (set PORT to another port)`);
  if (error.code === 'EACCES') return new StartupError(`Not allowed to listen on port ${port} (set PORT to another port)`);
  return error;
}
