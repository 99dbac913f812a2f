import type { GraphQLResolveInfo } from 'graphql';
import { getGraphQLRateLimiter, type Identity } from 'graphql-rate-limit';
import type { Limits, RateRule } from '../config.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RateLimitStore } from './store.js';

export type RateRuleName = keyof Limits['rates'];

/** One limit to check: a rule, counted for one caller (`ip:…`, `user:…`, `key:…`, `account:…`) over one scope. */
export interface RateCheck {
  rule: RateRuleName;
  who: string;
  /** What the calls are counted over: a field name, or `*` for every operation. */
  scope: string;
}

export interface RateLimiter {
  /** Throws RATE_LIMITED (with `retryAfter` seconds) at the first check over its limit. */
  check(checks: RateCheck[]): Promise<void>;
}

export function createRateLimiter(deps: {
  store: RateLimitStore;
  rules: Limits['rates'];
  logger: Logger;
  onRefused?: (check: RateCheck) => void;
}): RateLimiter {
  const { store, rules, logger } = deps;
  const limit = getGraphQLRateLimiter({ store, identifyContext: (ctx: { who: string }) => ctx.who });
  let storeDownSince = 0;

  const checkOne = async (check: RateCheck) => {
    const rule = rules[check.rule];
    const who = `${check.rule}:${check.who}`;
    // The library keys calls by the context's identity and the field name; the scope plays the field.
    const info = { fieldName: check.scope } as GraphQLResolveInfo;
    const refused = await limit({ parent: undefined, args: {}, context: { who }, info }, { max: rule.max, window: rule.window });
    if (!refused) return;
    deps.onRefused?.(check);
    const retryAfter = await secondsUntilFree(store, { contextIdentity: who, fieldIdentity: check.scope }, rule);
    throw new AppError('RATE_LIMITED', `Too many requests (${rule.max} per ${rule.window}); retry in ${retryAfter} s`, {
      retryAfter,
    });
  };

  return {
    async check(checks) {
      // All at once: one round trip's wait, not one per check. Every call counts, refused or not.
      const outcomes = await Promise.allSettled(checks.map(checkOne));
      const failures = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as unknown] : []));
      const refusal = failures.find((error) => error instanceof AppError);
      if (refusal) throw refusal;
      // The counters' store (Redis) is unreachable: serve rather than refuse everyone. Quotas,
      // query limits and the password-hashing bound still hold; /ready reports Redis down.
      if (failures.length > 0 && Date.now() - storeDownSince > 60_000) {
        storeDownSince = Date.now();
        logger.warn({ err: failures[0] }, 'rate limits not enforced: their store is unreachable');
      }
    },
  };
}

/** When the oldest call that keeps the caller over the limit leaves the window. */
async function secondsUntilFree(store: RateLimitStore, identity: Identity, rule: RateRule): Promise<number> {
  const calls = await store.callsInWindow(identity, rule.windowMs);
  const freeing = calls[Math.max(0, calls.length - rule.max)] ?? Date.now();
  return Math.max(1, Math.ceil((freeing + rule.windowMs - Date.now()) / 1000));
}
