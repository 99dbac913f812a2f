import type { RateCheck } from './limiter.js';

export interface Caller {
  viewer: { id: string; apiKeyId?: string } | null;
  /** The client's address, as far as it can be known (`unknown` in-process). */
  ip: string;
}

const AUTH_FIELDS = new Set(['register', 'login', 'refreshToken']);
// Everything that starts a reply shares the budget of sending a message.
const REPLY_FIELDS = new Set(['sendMessage', 'regenerateMessage', 'editMessage', 'submitToolResults']);

/**
 * Which limits a root field counts against. Every operation counts per caller (generously);
 * mutations also count against a tighter budget; signing in is limited per address and per
 * account (so guessing one account's password from many addresses is refused too); sending a
 * message and minting a Realtime session have budgets of their own. An API key counts both for
 * itself and for its user.
 */
export function rateChecksFor(
  rootType: 'Query' | 'Mutation' | 'Subscription',
  field: string,
  args: Record<string, unknown>,
  caller: Caller,
): RateCheck[] {
  const callers = caller.viewer
    ? [`user:${caller.viewer.id}`, ...(caller.viewer.apiKeyId ? [`key:${caller.viewer.apiKeyId}`] : [])]
    : [`ip:${caller.ip}`];
  const checks: RateCheck[] = callers.map((who) => ({ rule: 'operations', who, scope: '*' }));
  if (rootType !== 'Mutation') return checks;

  checks.push(...callers.map((who): RateCheck => ({ rule: 'mutations', who, scope: '*' })));
  if (AUTH_FIELDS.has(field)) checks.push({ rule: 'authPerIp', who: `ip:${caller.ip}`, scope: 'auth' });
  const email = field === 'login' ? (args.input as { email?: unknown } | undefined)?.email : undefined;
  if (typeof email === 'string') {
    checks.push({ rule: 'loginPerAccount', who: `account:${email.trim().toLowerCase()}`, scope: 'login' });
  }
  if (REPLY_FIELDS.has(field)) checks.push(...callers.map((who): RateCheck => ({ rule: 'sendMessage', who, scope: 'sendMessage' })));
  if (field === 'createRealtimeSession') {
    checks.push(...callers.map((who): RateCheck => ({ rule: 'realtimeSessions', who, scope: field })));
  }
  return checks;
}
