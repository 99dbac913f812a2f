import type { ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * When rate limits refused every root field of an operation, the whole request was refused:
 * HTTP 429 with Retry-After (the longest wait asked for), as HTTP clients and proxies expect.
 * Partly refused operations keep their data and answer 200.
 */
export function useRateLimitStatus(): Plugin {
  return {
    onExecutionResult({ result, setResult }) {
      if (Symbol.asyncIterator in (result as object)) return;
      const single = result as ExecutionResult;
      const errors = single.errors ?? [];
      if (errors.length === 0 || !errors.every((e) => e.extensions?.code === 'RATE_LIMITED')) return;
      if (single.data && Object.values(single.data).some((value) => value !== null)) return;
      const retryAfter = Math.max(...errors.map((e) => Number(e.extensions?.retryAfter) || 1));
      setResult({
        ...single,
        extensions: { ...single.extensions, http: { status: 429, headers: { 'Retry-After': String(retryAfter) } } },
      });
    },
  };
}
