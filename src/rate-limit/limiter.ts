import type { GraphQLResolveInfo } from 'graphql';
import { getGraphQLRateLimiter, type Identity, type Store } from 'graphql-rate-limit';
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
  const limiters = new Map(
    Object.entries(rules).map(([name, rule]) => [name, getGraphQLRateLimiter({ store: countingStore(store, rule), identifyContext })]),
  );
  let storeDownSince = 0;

  const checkOne = async (check: RateCheck) => {
    const rule = rules[check.rule];
    const key = `${check.rule}:${check.who}:${check.scope}`;
    // The library keys calls by the context's identity and the field name; the scope plays the field.
    const info = { fieldName: check.scope } as GraphQLResolveInfo;
    const limit = limiters.get(check.rule)!;
    const refused = await limit({ parent: undefined, args: {}, context: { key }, info }, { max: rule.max, window: rule.window });
    if (!refused) return;
    deps.onRefused?.(check);
    const freeAt = (await store.freeAt(key, rule)) ?? Date.now();
    const retryAfter = Math.max(1, Math.ceil((freeAt + rule.windowMs - Date.now()) / 1000));
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

const identifyContext = (context: { key: string }) => context.key;

/**
 * graphql-rate-limit decides from how many earlier calls are in the window, not from their
 * times, so the store records the call and sends back only its count (capped at the rule's
 * `max`, which is all the decision needs); the library gets that many timestamps of "now".
 */
function countingStore(store: RateLimitStore, rule: RateRule): Store {
  return {
    async getForIdentity(identity: Identity) {
      const earlier = await store.record(identity.contextIdentity, rule);
      return new Array<number>(earlier).fill(Date.now());
    },
    // The call was recorded, and what left the window forgotten, by `record` above.
    setForIdentity() {},
  };
}
