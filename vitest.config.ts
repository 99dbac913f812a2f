import { defineConfig } from 'vitest/config';

export default defineConfig({
  // graphql ships CJS and ESM builds; one copy for tests, Pothos and Yoga avoids "another realm" errors.
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    globalSetup: ['test/helpers/global-setup.ts'],
    setupFiles: ['test/helpers/dispose-leftovers.ts'],
    include: ['test/**/*.test.ts'],
    // Tests wait for events, not for time; these bound what is real time: a test that builds its
    // own app creates an embedded database (up to ~25 s seen on a busy 2-core machine).
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Files in one worker share the loaded modules: importing the app once per worker instead of
    // once per file saves about two minutes a run. Tests keep no state in modules (each builds its
    // own app, users and data), which this relies on.
    isolate: false,
    // Two cores here; more workers only add contention with PostgreSQL and the mock upstream.
    maxWorkers: 2,
  },
});
