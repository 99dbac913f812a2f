import type { PrismaClient } from '../db/client.js';
import { badInput } from '../errors.js';
import { Prisma, type User } from '../generated/prisma/client.js';
import { MAX_USAGE_RANGE_DAYS, type UsageTotals } from '../metering/queries.js';

export type UsageGroupBy = 'USER' | 'MODEL' | 'DAY';

export interface UsageReportRow extends UsageTotals {
  /** Set by the grouping: the user (USER), the model (MODEL) or the day (DAY). */
  user: User | null;
  model: string | null;
  day: Date | null;
}

/** Grouped by user, the report lists the largest spenders first, at most this many. */
export const MAX_REPORT_ROWS = 1000;
const DAY_MS = 86_400_000;
const COLUMNS = { USER: 'userId', MODEL: 'model', DAY: 'day' } as const;

type GroupRow = { group: string } & { [K in keyof UsageTotals]: bigint };

/**
 * The whole service's usage between two UTC days (inclusive), from the daily roll-ups, grouped
 * by user (largest cost first), model (largest cost first) or day (in order). The users of a
 * USER report are read in one query.
 */
export async function usageReport(
  prisma: PrismaClient,
  range: { from: Date; to: Date; groupBy: UsageGroupBy },
): Promise<UsageReportRow[]> {
  const { from, to, groupBy } = range;
  if (from > to) throw badInput('from must not be after to', 'from');
  if ((to.getTime() - from.getTime()) / DAY_MS >= MAX_USAGE_RANGE_DAYS) {
    throw badInput(`The range may span at most ${MAX_USAGE_RANGE_DAYS} days`, 'to');
  }
  const column = Prisma.raw(`"${COLUMNS[groupBy]}"`);
  const order = groupBy === 'DAY' ? Prisma.sql`"day" ASC` : Prisma.sql`SUM("costMicros") DESC, ${column} ASC`;
  const rows = await prisma.$queryRaw<GroupRow[]>`
    SELECT ${column}::text AS "group",
           SUM("promptTokens")::bigint AS "promptTokens", SUM("cachedTokens")::bigint AS "cachedTokens",
           SUM("cacheWriteTokens")::bigint AS "cacheWriteTokens",
           SUM("completionTokens")::bigint AS "completionTokens", SUM("reasoningTokens")::bigint AS "reasoningTokens",
           SUM("totalTokens")::bigint AS "totalTokens", SUM("costMicros")::bigint AS "costMicros",
           SUM("requests")::bigint AS "requests"
    FROM "UsageDaily"
    WHERE "day" BETWEEN ${from}::date AND ${to}::date
    GROUP BY ${column}
    ORDER BY ${order}
    LIMIT ${MAX_REPORT_ROWS}`;
  const users =
    groupBy === 'USER'
      ? new Map((await prisma.user.findMany({ where: { id: { in: rows.map((row) => row.group) } } })).map((u) => [u.id, u]))
      : undefined;
  return rows.map((row) => ({
    user: users?.get(row.group) ?? null,
    model: groupBy === 'MODEL' ? row.group : null,
    day: groupBy === 'DAY' ? new Date(`${row.group}T00:00:00.000Z`) : null,
    promptTokens: Number(row.promptTokens),
    cachedTokens: Number(row.cachedTokens),
    cacheWriteTokens: Number(row.cacheWriteTokens),
    completionTokens: Number(row.completionTokens),
    reasoningTokens: Number(row.reasoningTokens),
    totalTokens: Number(row.totalTokens),
    costMicros: Number(row.costMicros),
    requests: Number(row.requests),
  }));
}
