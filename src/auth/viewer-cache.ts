import { createHash } from 'node:crypto';
import type { Revocation } from './revocations.js';
import type { Viewer } from './viewer.js';

/**
 * Viewers authenticated in the last `ttlMs`, by a hash of their credential, so that a client's
 * next requests skip the database. Revocation notices evict them (see `evict`); a lost notice is
 * outlived by at most `ttlMs`. Only successes are kept: a bad credential is checked every time.
 */
export interface ViewerCache {
  /**
   * The viewer the credential authenticated, while both the entry and the credential itself
   * (an access token's `exp`, an API key's `expiresAt`) are still valid.
   */
  get(credential: string): Viewer | undefined;
  /** Where the cache stood before an authentication began (see `set`). */
  generation(): number;
  /**
   * Keeps the viewer unless a notice arrived since `generation`: the authentication may have
   * read the rows before the change the notice is about.
   */
  set(credential: string, viewer: Viewer, credentialExpiresAt: number | null, generation: number): void;
  /** Forgets every viewer of the user (or of the key) the notice is about. */
  evict(revocation: Revocation): void;
  /** Forgets everything: notices may have been missed (the channel was down). */
  clear(): void;
}

interface Entry {
  viewer: Viewer;
  /** When the entry stops being used: the TTL, or the credential's own expiry if sooner. */
  validUntil: number;
}

export function createViewerCache(options: { ttlMs: number; maxEntries: number; now?: () => number }): ViewerCache {
  const { ttlMs, maxEntries, now = Date.now } = options;
  // A Map iterates in insertion order: the first key is the least recently used one.
  const entries = new Map<string, Entry>();
  let generation = 0;

  const forget = (matches: (viewer: Viewer) => boolean) => {
    generation += 1;
    for (const [key, entry] of entries) if (matches(entry.viewer)) entries.delete(key);
  };

  return {
    get(credential) {
      if (ttlMs === 0) return undefined;
      const key = keyOf(credential);
      const entry = entries.get(key);
      if (!entry) return undefined;
      entries.delete(key);
      if (entry.validUntil <= now()) return undefined;
      entries.set(key, entry);
      return entry.viewer;
    },
    generation: () => generation,
    set(credential, viewer, credentialExpiresAt, since) {
      if (ttlMs === 0 || since !== generation) return;
      const validUntil = Math.min(now() + ttlMs, credentialExpiresAt ?? Infinity);
      const key = keyOf(credential);
      entries.delete(key);
      // Full: the least recently used entry makes room, so distinct credentials cannot grow memory.
      if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
      entries.set(key, { viewer, validUntil });
    },
    evict(revocation) {
      // Every notice about a user drops all their viewers, API keys' too: the user's row changed.
      if (revocation.kind === 'apiKey') forget((viewer) => viewer.apiKeyId === revocation.apiKeyId);
      else forget((viewer) => viewer.id === revocation.userId);
    },
    clear() {
      generation += 1;
      entries.clear();
    },
  };
}

// The raw secret is never a key: a heap dump or a debug print of the map shows only hashes.
function keyOf(credential: string): string {
  return createHash('sha256').update(credential).digest('base64url');
}
