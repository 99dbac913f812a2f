import type { LiveChannel } from '../streams/stream-hub.js';
import type { Logger } from '../logger.js';

/**
 * A credential that stopped working: one API key, a user's sign-in sessions (logout
 * everywhere, password change), or everything of a user (deactivation). `userChanged` revokes
 * nothing: the user's row changed (role, name), so cached viewers of the user are dropped
 * and the next request reads it again; connections stay open.
 */
export type Revocation =
  | { kind: 'apiKey'; apiKeyId: string }
  | { kind: 'sessions'; userId: string }
  | { kind: 'user'; userId: string }
  | { kind: 'userChanged'; userId: string };

export interface RevocationBus {
  /** Never fails: see createRevocationBus. */
  announce(revocation: Revocation): Promise<void>;
  onRevoked(handler: (revocation: Revocation) => void): Promise<() => Promise<void>>;
}

const TOPIC = 'revocations';
/** Waits before each further try of a notice that could not be published. */
const RETRY_DELAYS_MS = [1_000, 5_000, 30_000];

/**
 * Tells every instance (through the cluster channel) that a credential was revoked, so that
 * connections authenticated with it are closed at once. The notice is best effort, after the
 * revocation committed: the change stands whatever the channel does, so announcing never fails.
 * A notice that could not be published is logged and tried again a few times in the background;
 * meanwhile every new operation is refused anyway, since each one authenticates again.
 *
 * `applyLocally` runs first, on the announcing instance, whatever the channel does: that
 * instance's cached viewers never outlive a revocation it made, even when publishing fails.
 */
export function createRevocationBus(
  channel: LiveChannel,
  logger: Logger,
  applyLocally: (revocation: Revocation) => void = () => {},
): RevocationBus {
  const publish = (revocation: Revocation) => channel.publish(TOPIC, JSON.stringify(revocation));
  const retry = async (revocation: Revocation) => {
    for (const delay of RETRY_DELAYS_MS) {
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
      try {
        await publish(revocation);
        logger.info({ revocation: revocation.kind }, 'announced a revocation after a failed try');
        return;
      } catch {
        // Tried again after the next delay; the last failure is logged below.
      }
    }
    logger.error({ revocation: revocation.kind }, 'gave up announcing a revocation: operations already running with the credential run on until they end');
  };
  return {
    async announce(revocation) {
      applyLocally(revocation);
      try {
        await publish(revocation);
      } catch (error) {
        logger.warn({ err: error, revocation: revocation.kind }, 'could not announce a revocation; trying again in the background');
        void retry(revocation);
      }
    },
    onRevoked: (handler) => channel.subscribe(TOPIC, (payload) => handler(JSON.parse(payload) as Revocation)),
  };
}

/** Whether a connection authenticated this way is cut off by the revocation. */
export function isRevokedBy(
  revocation: Revocation,
  viewer: { id: string; via: string; apiKeyId?: string },
): boolean {
  switch (revocation.kind) {
    case 'apiKey':
      return viewer.apiKeyId === revocation.apiKeyId;
    case 'sessions':
      return viewer.id === revocation.userId && viewer.via === 'access_token';
    case 'user':
      return viewer.id === revocation.userId;
    case 'userChanged':
      return false;
  }
}
