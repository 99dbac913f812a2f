import { RateLimiterRes } from 'rate-limiter-flexible';
import type { Limits } from '../config.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { countersFor, type RedisCounters } from './counters.js';

export type RateRuleName = keyof Limits['rates'];

/** One limit to check: a rule, counted for one caller (`ip:…`, `user:…`, `key:…`, `account:…`) over one scope. */
export interface RateCheck {
  rule: RateRuleName;
  who: string;
  /** What the calls are counted over: a field name, or `*` for every operation. */
  scope: string;
}

export interface RateLimiter {
  /** Throws RATE_LIMITED (with `retryAfter` seconds) when a check is over its limit. */
  check(checks: RateCheck[]): Promise<void>;
}

/** Counters of their own for each app: two apps in one process never share them. */
export function createRateLimiter(deps: {
  rules: Limits['rates'];
  logger: Logger;
  /** Counts shared by every instance; without it, counted in this process. */
  redis?: RedisCounters;
  onRefused?: (check: RateCheck) => void;
}): RateLimiter {
  const { rules, logger } = deps;
  let warnedAt = -Infinity;
  const warnRedisDown = () => {
    if (Date.now() - warnedAt < 60_000) return;
    warnedAt = Date.now();
    logger.warn('rate limits counted by each instance alone: Redis is unreachable');
  };
  const counters = new Map(Object.entries(rules).map(([name, rule]) => [name, countersFor(name, rule, deps.redis, warnRedisDown)]));

  return {
    async check(checks) {
      // All at once: one round trip's wait, not one per check. Every call counts, refused or not.
      // Scope first: never the key of a sorted set kept by the former sliding-log limiter, so
      // instances of both versions can run side by side through a rolling upgrade.
      const outcomes = await Promise.allSettled(checks.map((check) => counters.get(check.rule)!.consume(`${check.scope}:${check.who}`)));
      let longest: { check: RateCheck; msBeforeNext: number } | undefined;
      outcomes.forEach((outcome, index) => {
        if (outcome.status === 'fulfilled') return;
        if (!(outcome.reason instanceof RateLimiterRes)) throw outcome.reason;
        const check = checks[index]!;
        deps.onRefused?.(check);
        if (!longest || outcome.reason.msBeforeNext > longest.msBeforeNext) longest = { check, msBeforeNext: outcome.reason.msBeforeNext };
      });
      if (!longest) return;
      // The longest wait: a caller that waits that long gets through every limit it was over.
      const rule = rules[longest.check.rule];
      const retryAfter = Math.max(1, Math.ceil(longest.msBeforeNext / 1000));
      throw new AppError('RATE_LIMITED', `Too many requests (${rule.max} per ${rule.window}); retry in ${retryAfter} s`, { retryAfter });
    },
  };
}
