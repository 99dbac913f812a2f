import type { PrismaClient } from '../db/client.js';
import { badInput } from '../errors.js';

export interface UsageTotals {
  /** Includes the prompt tokens read from the provider's cache and those written to it. */
  promptTokens: number;
  cachedTokens: number;
  cacheWriteTokens: number;
  /** Includes the reasoning tokens. */
  completionTokens: number;
  reasoningTokens: number;
  totalTokens: number;
  costMicros: number;
  requests: number;
}

export interface UsageDay extends UsageTotals {
  date: Date;
}

export const ZERO_USAGE: UsageTotals = {
  promptTokens: 0,
  cachedTokens: 0,
  cacheWriteTokens: 0,
  completionTokens: 0,
  reasoningTokens: 0,
  totalTokens: 0,
  costMicros: 0,
  requests: 0,
};
export const MAX_USAGE_RANGE_DAYS = 366;
const DAY_MS = 86_400_000;

/**
 * Totals and daily buckets for one user between two UTC days (inclusive), from the roll-ups.
 * Defaults: the current month so far.
 */
export async function userUsage(
  prisma: PrismaClient,
  userId: string,
  range: { from?: Date | null; to?: Date | null },
  now = new Date(),
): Promise<{ totals: UsageTotals; daily: UsageDay[] }> {
  const to = range.to ?? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const from = range.from ?? new Date(Date.UTC(to.getUTCFullYear(), to.getUTCMonth(), 1));
  if (from > to) throw badInput('from must not be after to', 'from');
  if ((to.getTime() - from.getTime()) / DAY_MS >= MAX_USAGE_RANGE_DAYS) {
    throw badInput(`The range may span at most ${MAX_USAGE_RANGE_DAYS} days`, 'to');
  }
  const rows = await prisma.usageDaily.groupBy({
    by: ['day'],
    where: { userId, day: { gte: from, lte: to } },
    orderBy: { day: 'asc' },
    _sum: { ...SUMMED_USAGE, requests: true },
  });
  const daily = rows.map((row) => ({
    date: row.day,
    promptTokens: Number(row._sum.promptTokens ?? 0n),
    cachedTokens: Number(row._sum.cachedTokens ?? 0n),
    cacheWriteTokens: Number(row._sum.cacheWriteTokens ?? 0n),
    completionTokens: Number(row._sum.completionTokens ?? 0n),
    reasoningTokens: Number(row._sum.reasoningTokens ?? 0n),
    totalTokens: Number(row._sum.totalTokens ?? 0n),
    costMicros: Number(row._sum.costMicros ?? 0n),
    requests: row._sum.requests ?? 0,
  }));
  return { totals: sumUsage(daily), daily };
}

/** The usage columns a roll-up or a conversation sums. */
const SUMMED_USAGE = {
  promptTokens: true,
  cachedTokens: true,
  cacheWriteTokens: true,
  completionTokens: true,
  reasoningTokens: true,
  totalTokens: true,
  costMicros: true,
} as const;

export function sumUsage(items: UsageTotals[]): UsageTotals {
  return items.reduce(
    (sum, u) => ({
      promptTokens: sum.promptTokens + u.promptTokens,
      cachedTokens: sum.cachedTokens + u.cachedTokens,
      cacheWriteTokens: sum.cacheWriteTokens + u.cacheWriteTokens,
      completionTokens: sum.completionTokens + u.completionTokens,
      reasoningTokens: sum.reasoningTokens + u.reasoningTokens,
      totalTokens: sum.totalTokens + u.totalTokens,
      costMicros: sum.costMicros + u.costMicros,
      requests: sum.requests + u.requests,
    }),
    ZERO_USAGE,
  );
}

/** Usage of many conversations in one query (for a DataLoader). */
export async function conversationUsage(prisma: PrismaClient, conversationIds: readonly string[]): Promise<UsageTotals[]> {
  const rows = await prisma.message.groupBy({
    by: ['conversationId'],
    where: { conversationId: { in: [...conversationIds] }, role: 'ASSISTANT' },
    _sum: SUMMED_USAGE,
    _count: { _all: true },
  });
  const byId = new Map(rows.map((r) => [r.conversationId, r]));
  return conversationIds.map((id) => {
    const row = byId.get(id);
    if (!row) return ZERO_USAGE;
    return {
      promptTokens: row._sum.promptTokens ?? 0,
      cachedTokens: row._sum.cachedTokens ?? 0,
      cacheWriteTokens: row._sum.cacheWriteTokens ?? 0,
      completionTokens: row._sum.completionTokens ?? 0,
      reasoningTokens: row._sum.reasoningTokens ?? 0,
      totalTokens: row._sum.totalTokens ?? 0,
      costMicros: Number(row._sum.costMicros ?? 0n),
      requests: row._count._all,
    };
  });
}
