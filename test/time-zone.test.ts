import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { decodeGlobalId } from '../src/global-id.js';
import { expectData, startTestApp, type TestApp } from './helpers/app.js';
import { registerUser } from './helpers/accounts.js';
import { SendMessageDocument } from './helpers/chat-documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';
import { skipping } from './helpers/skips.js';

const databaseUrl = inject('databaseUrl');
const utcDayOf = (date: Date) => date.toISOString().slice(0, 10);
const REPLY = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');

// UTC+14: whatever the hour in UTC, its calendar day and its clock differ from UTC's.
function urlInTimeZone(url: string, timeZone: string): string {
  const withOptions = new URL(url);
  withOptions.searchParams.set('options', `-c TimeZone=${timeZone}`);
  return withOptions.toString();
}

describe.skipIf(skipping(!databaseUrl, 'sessions not in UTC: needs DATABASE_URL (PostgreSQL)'))('on a PostgreSQL whose sessions are not in UTC', () => {
  let upstream: MockUpstream;
  let t: TestApp;
  beforeAll(async () => {
    upstream = await MockUpstream.start();
    t = await startTestApp(
      { ...upstream.env, GENERATION_LEASE_SECONDS: '3' },
      { database: { kind: 'postgres', url: urlInTimeZone(databaseUrl!, 'Pacific/Kiritimati') } },
    );
  });
  afterAll(async () => {
    await t.stop();
    await upstream.stop();
  });

  it('settles, corrects and rolls up a reply in UTC: one day, times that are now', async () => {
    const prisma = t.app.db.prisma;
    const [{ TimeZone: sessionZone }] = await prisma.$queryRaw<[{ TimeZone: string }]>`SELECT current_setting('TimeZone') AS "TimeZone"`;
    expect(sessionZone).toBe('Pacific/Kiritimati');

    const user = await registerUser(t);
    const { id: userId } = await prisma.user.findUniqueOrThrow({ where: { email: user.email } });
    const prompt = upstream.prompt({ content: REPLY, usage: { prompt_tokens: 300, completion_tokens: 40 } }, { chunkSize: 4, latency: 20 }, 'paused');
    const sent = expectData(await t.execute(SendMessageDocument, { input: { content: prompt } }, { token: user.accessToken }));
    const messageId = decodeGlobalId(sent.sendMessage.assistantMessage.id).id;
    await upstream.waitForRequest(prompt);
    // Closed by estimate as if its instance were gone, then corrected by the instance itself.
    const running = await prisma.message.findUniqueOrThrow({ where: { id: messageId } });
    expect(await t.app.recovery.close(running, 'FAILED')).toBe(true);
    await waitFor('the generation to finish', () => t.app.runner.size === 0);

    const now = Date.now();
    const reservation = await prisma.reservation.findFirstOrThrow({ where: { messageId } });
    for (const [what, at] of Object.entries({ createdAt: reservation.createdAt, settledAt: reservation.settledAt, correctedAt: reservation.correctedAt })) {
      expect(Math.abs(now - at!.getTime()), what).toBeLessThan(60_000);
    }
    const ledger = await prisma.creditLedgerEntry.findMany({ where: { userId } });
    for (const entry of ledger) expect(Math.abs(now - entry.createdAt.getTime()), entry.kind).toBeLessThan(60_000);
    // Rows the Prisma client creates, with their @default(now()) and @updatedAt.
    const account = await prisma.user.findUniqueOrThrow({ where: { id: userId } });
    expect(Math.abs(now - account.createdAt.getTime()), 'User.createdAt').toBeLessThan(60_000);
    expect(Math.abs(now - account.updatedAt.getTime()), 'User.updatedAt').toBeLessThan(60_000);

    const message = await prisma.message.findUniqueOrThrow({ where: { id: messageId } });
    expect(message).toMatchObject({ status: 'COMPLETE', totalTokens: 340 });
    expect(Math.abs(now - message.completedAt!.getTime())).toBeLessThan(60_000);
    // The settlement's request and the correction's tokens on the same day: today, in UTC.
    const daily = await prisma.usageDaily.findMany({ where: { userId } });
    expect(daily.map((d) => [d.day.toISOString().slice(0, 10), d.requests, d.totalTokens])).toEqual([[utcDayOf(reservation.settledAt!), 1, 340n]]);
    expect(utcDayOf(reservation.settledAt!)).toBe(utcDayOf(new Date(now)));
  });

  it('sweeps a reservation once its lease lapsed, not before', async () => {
    const user = await registerUser(t);
    const { id: userId } = await t.app.db.prisma.user.findUniqueOrThrow({ where: { email: user.email } });
    const model = t.config.chat.models[0]!;
    const reserve = (leaseMs: number) =>
      t.app.metering.reserve(t.app.db.prisma, { userId, model, promptEstimate: 10, maxOutputTokens: 10, leaseMs });
    const live = await reserve(60_000);
    const lapsed = await reserve(-1_000);
    await t.app.metering.sweep();
    const rows = await t.app.db.prisma.reservation.findMany({ where: { id: { in: [live.id, lapsed.id] } } });
    expect(Object.fromEntries(rows.map((r) => [r.id === live.id ? 'live' : 'lapsed', r.settledBy]))).toEqual({ live: null, lapsed: 'SWEEP' });
  });
});
