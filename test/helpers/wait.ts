import { registerLeftover } from './leftovers.js';

const POLL_MS = 25;

/**
 * Waits for state the test cannot subscribe to (a row, the upstream's journal, a counter) by
 * checking it until it holds, and returns what the check returned. It has no deadline of its
 * own: the test's timeout bounds it, and a test that ends first stops it and says what it
 * was still waiting for.
 */
export async function waitFor<T>(what: string, check: () => T | Promise<T>): Promise<NonNullable<T>> {
  let waiting = true;
  const stop = registerLeftover(() => {
    if (!waiting) return;
    waiting = false;
    throw new Error(`the test ended while waiting for ${what}`);
  });
  try {
    for (;;) {
      const value = await check();
      if (value) return value;
      if (!waiting) throw new Error(`stopped waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    if (waiting) {
      waiting = false;
      await stop();
    }
  }
}
