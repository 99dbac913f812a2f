import { WebSocket } from 'ws';
import type { Logger } from '../logger.js';

/**
 * The class of the server's sockets. A client that breaks the WebSocket protocol (a message over
 * maxPayload, a malformed frame) has already been closed by ws with the matching code (1009, 1002…)
 * when ws emits the error, which graphql-ws would print to stderr with its stack as an internal
 * error of ours. It is the client's mistake: logged as one line and not passed on.
 */
export function serverSocketClass(logger: Logger): typeof WebSocket {
  return class ServerSocket extends WebSocket {
    override emit(event: string | symbol, ...args: unknown[]): boolean {
      const error = event === 'error' ? args[0] : undefined;
      if (isProtocolViolation(error)) {
        logger.info({ code: error.code }, `websocket client closed: ${error.message}`);
        return true;
      }
      return super.emit(event, ...args);
    }
  };
}

/** ws's errors about what the peer sent all have a code starting with WS_ERR_. */
function isProtocolViolation(error: unknown): error is Error & { code: string } {
  return error instanceof Error && String((error as { code?: unknown }).code).startsWith('WS_ERR_');
}
