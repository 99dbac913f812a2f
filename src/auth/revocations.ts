import type { LiveChannel } from '../chat/stream-hub.js';

/**
 * A credential that stopped working: one API key, a user's sign-in sessions (logout
 * everywhere, password change), or everything of a user (deactivation).
 */
export type Revocation =
  | { kind: 'apiKey'; apiKeyId: string }
  | { kind: 'sessions'; userId: string }
  | { kind: 'user'; userId: string };

export interface RevocationBus {
  announce(revocation: Revocation): Promise<void>;
  onRevoked(handler: (revocation: Revocation) => void): Promise<() => Promise<void>>;
}

const TOPIC = 'revocations';

/**
 * Tells every instance (through the cluster channel) that a credential was revoked, so that
 * connections authenticated with it are closed at once; new operations are refused anyway,
 * since each one authenticates again.
 */
export function createRevocationBus(channel: LiveChannel): RevocationBus {
  return {
    announce: (revocation) => channel.publish(TOPIC, JSON.stringify(revocation)),
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
  }
}
