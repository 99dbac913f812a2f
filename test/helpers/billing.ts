import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { decodeGlobalId } from '../../src/global-id.js';
import { appendCreditEntry } from '../../src/metering/credits.js';
import { registerUser } from './accounts.js';
import { startTestApp, testDatabase, type TestApp } from './app.js';
import { LocalStripeApi } from './stripe-api.js';
import { TEST_WEBHOOK_SECRET } from './stripe-events.js';

export interface BillingFixture {
  t: TestApp;
  api: LocalStripeApi;
  /** Where the server listens, for the webhook route (outside GraphQL). */
  origin: string;
}

/** One server for the file, configured for Stripe against a local Stripe API; `env` may be read once earlier hooks ran. */
export function billingAppForFile(env: Record<string, string> | (() => Record<string, string>) = {}): BillingFixture {
  const fixture = {} as BillingFixture;
  beforeAll(async () => {
    fixture.api = await LocalStripeApi.start();
    fixture.t = await startTestApp({ ...fixture.api.env(TEST_WEBHOOK_SECRET), ...(typeof env === 'function' ? env() : env) });
    fixture.origin = (await fixture.t.app.start(0)).origin;
  });
  afterAll(async () => {
    await fixture.t?.stop();
    await fixture.api?.stop();
  });
  return fixture;
}

/** A new user: their session and the database id that Stripe objects carry. */
export async function signUp(t: TestApp) {
  const session = await registerUser(t);
  return { token: session.accessToken, userId: decodeGlobalId(session.user.id).id };
}

export async function userRow(t: TestApp, userId: string) {
  return t.app.db.prisma.user.findUniqueOrThrow({ where: { id: userId } });
}

/** The user's ledger entries other than the sign-up grant, oldest first. */
export async function stripeLedger(t: TestApp, userId: string) {
  const entries = await t.app.db.prisma.creditLedgerEntry.findMany({
    where: { userId, kind: { not: 'GRANT' } },
    orderBy: { id: 'asc' },
  });
  return entries.map((e) => ({ kind: e.kind, amountMicros: Number(e.amountMicros), stripeEventId: e.stripeEventId }));
}

export async function isRecorded(t: TestApp, eventId: string): Promise<boolean> {
  return (await t.app.db.prisma.processedStripeEvent.count({ where: { id: eventId } })) === 1;
}

/** Spends credits as chat calls would, so that a later reversal can take the balance below zero. */
export async function spendCredits(t: TestApp, userId: string, micros: number): Promise<void> {
  await t.app.db.prisma.$transaction((tx) =>
    appendCreditEntry(tx, { userId, kind: 'USAGE', amountMicros: BigInt(-micros), reason: 'test usage' }),
  );
}

/**
 * Runs the requests at once. On PostgreSQL the user's row is held locked from another connection
 * until every request has arrived and is waiting on a lock, so they truly overlap instead of
 * running one after the other by the accident of timing. (PGlite runs one transaction at a time.)
 */
export async function concurrentlyBehindUserRowLock<T>(userId: string, requests: Array<() => Promise<T>>): Promise<T[]> {
  const database = testDatabase();
  if (database.kind !== 'postgres') return Promise.all(requests.map((request) => request()));
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT 1 FROM "User" WHERE "id" = $1 FOR UPDATE', [userId]);
    let settled = 0;
    const pending = Promise.all(requests.map((request) => request().finally(() => (settled += 1))));
    for (const deadline = Date.now() + 5000; Date.now() < deadline; ) {
      // pg_stat_activity is read once per transaction unless its snapshot is cleared. Lock
      // waiters of other test files only end the hold sooner, never fail a test.
      await client.query('SELECT pg_stat_clear_snapshot()');
      const { rows } = await client.query(
        "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
      );
      if (settled + (rows[0] as { waiting: number }).waiting >= requests.length) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await client.query('COMMIT');
    return await pending;
  } finally {
    await client.end();
  }
}
