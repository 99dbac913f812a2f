/**
 * Limits (and credits) high enough for the suite, whose files share one address (and, on Redis, one set of
 * counters): tests of a limit set it low for their own server.
 */
export const GENEROUS_LIMITS = {
  RATE_LIMIT_OPERATIONS: '100000/1m',
  RATE_LIMIT_MUTATIONS: '100000/1m',
  RATE_LIMIT_AUTH_PER_IP: '100000/1m',
  RATE_LIMIT_LOGIN_PER_ACCOUNT: '1000/1m',
  RATE_LIMIT_SEND_MESSAGE: '100000/1m',
  RATE_LIMIT_REALTIME_SESSIONS: '100000/1m',
  MAX_CONCURRENT_GENERATIONS: '100',
  PASSWORD_HASH_QUEUE: '10000',
  // $100 of sign-up credits: enough for every priced call in the suite. Tests of credits set their own.
  SIGNUP_CREDITS_MICROS: '100000000',
} as const;
