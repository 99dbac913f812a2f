import type { PrismaClient } from '../db/client.js';
import { badInput } from '../errors.js';
import { Prisma, type User } from '../generated/prisma/client.js';
import { MAX_USAGE_RANGE_DAYS, type UsageTotals } from '../metering/queries.js';

export type UsageGroupBy = 'USER' | 'MODEL' | 'DAY' | 'PROVIDER';

export interface UsageReportRow extends UsageTotals {
  /** Set by the grouping: the user (USER), the model (MODEL), the day (DAY) or the provider (PROVIDER). */
  user: User | null;
  model: string | null;
  day: Date | null;
  provider: string | null;
  /** PROVIDER only: what the provider charges for the attempts no user was billed for. */
  unbilledCostMicros: number | null;
}

/** Grouped by user, the report lists the largest spenders first, at most this many. */
export const MAX_REPORT_ROWS = 1000;
const DAY_MS = 86_400_000;
const COLUMNS = { USER: 'userId', MODEL: 'model', DAY: 'day' } as const;

type GroupRow = { group: string } & { [K in keyof UsageTotals]: bigint };
type ProviderRow = GroupRow & { unbilledCostMicros: bigint };

/**
 * The whole service's usage between two UTC days (inclusive), from the daily roll-ups, grouped
 * by user (largest cost first), model (largest cost first) or day (in order); by provider from
 * the attempt records. The users of a USER report are read in one query.
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
  if (groupBy === 'PROVIDER') return providerUsage(prisma, from, to);
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
    provider: null,
    ...rowFigures(row),
    unbilledCostMicros: null,
  }));
}

/**
 * Per provider (largest cost first, billed or not), from every attempt started in the range:
 * the tokens and cost of the attempts users were billed for, every attempt as a request, and
 * apart what the provider charges for the attempts nobody was billed for (failed, cut, replaced).
 */
async function providerUsage(prisma: PrismaClient, from: Date, to: Date): Promise<UsageReportRow[]> {
  const end = new Date(to.getTime() + DAY_MS);
  const rows = await prisma.$queryRaw<ProviderRow[]>`
    SELECT "provider" AS "group",
           COALESCE(SUM("promptTokens") FILTER (WHERE "billed"), 0)::bigint AS "promptTokens",
           COALESCE(SUM("cachedTokens") FILTER (WHERE "billed"), 0)::bigint AS "cachedTokens",
           COALESCE(SUM("cacheWriteTokens") FILTER (WHERE "billed"), 0)::bigint AS "cacheWriteTokens",
           COALESCE(SUM("completionTokens") FILTER (WHERE "billed"), 0)::bigint AS "completionTokens",
           COALESCE(SUM("reasoningTokens") FILTER (WHERE "billed"), 0)::bigint AS "reasoningTokens",
           COALESCE(SUM("promptTokens"::bigint + "completionTokens") FILTER (WHERE "billed"), 0)::bigint AS "totalTokens",
           COALESCE(SUM("costMicros") FILTER (WHERE "billed"), 0)::bigint AS "costMicros",
           COUNT(*)::bigint AS "requests",
           COALESCE(SUM("costMicros") FILTER (WHERE NOT "billed"), 0)::bigint AS "unbilledCostMicros"
    FROM "MessageAttempt"
    WHERE "startedAt" >= ${from} AND "startedAt" < ${end}
    GROUP BY "provider"
    ORDER BY SUM("costMicros") DESC, "provider" ASC
    LIMIT ${MAX_REPORT_ROWS}`;
  return rows.map((row) => ({
    user: null,
    model: null,
    day: null,
    provider: row.group,
    ...rowFigures(row),
    unbilledCostMicros: Number(row.unbilledCostMicros),
  }));
}

/** A report row's sums, as numbers. */
function rowFigures(row: GroupRow) {
  return {
    promptTokens: Number(row.promptTokens),
    cachedTokens: Number(row.cachedTokens),
    cacheWriteTokens: Number(row.cacheWriteTokens),
    completionTokens: Number(row.completionTokens),
    reasoningTokens: Number(row.reasoningTokens),
    totalTokens: Number(row.totalTokens),
    costMicros: Number(row.costMicros),
    requests: Number(row.requests),
  };
}
