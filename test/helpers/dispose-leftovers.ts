import { afterAll, afterEach, beforeEach } from 'vitest';
import { beginTest, disposeLeftovers } from './leftovers.js';

// A setup file (vitest.config.ts): these hooks wrap every test file. Registered first, the
// after-hooks run last, once the file's own hooks have stopped what they stop themselves.
beforeEach(() => beginTest());
afterEach(() => disposeLeftovers('test'));
afterAll(() => disposeLeftovers('file'));
