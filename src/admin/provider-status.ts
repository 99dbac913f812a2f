import type { PrismaClient } from '../db/client.js';
import type { ProviderHealth, ReadProviderHealth } from '../providers/provider-health.js';

/** How far back a provider's recent figures look. */
export const RECENT_WINDOW_MS = 15 * 60_000;

/** A provider's upstream calls since `since`, from the attempt records of every instance. */
export interface ProviderFigures {
  since: Date;
  attempts: number;
  /** Attempts that did not end OK (timeouts and cuts included). */
  errors: number;
  timeouts: number;
  cuts: number;
  /** Over the attempts that produced a first token; null without any. */
  medianFirstTokenMs: number | null;
  p95FirstTokenMs: number | null;
  /** What the provider charges for attempts whose text users were billed for, and for the others. */
  billedCostMicros: bigint;
  unbilledCostMicros: bigint;
}

export interface ProviderStatus extends ProviderHealth {
  recent: ProviderFigures;
}

type FiguresRow = Omit<ProviderFigures, 'since'> & { provider: string };

/**
 * Each configured provider with its circuits and its recent figures: one aggregate query for
 * every provider, beside the circuit reads.
 */
export async function providerStatus(prisma: PrismaClient, readHealth: ReadProviderHealth, now = new Date()): Promise<ProviderStatus[]> {
  const since = new Date(now.getTime() - RECENT_WINDOW_MS);
  const [health, rows] = await Promise.all([
    readHealth(),
    prisma.$queryRaw<FiguresRow[]>`
      SELECT "provider",
             COUNT(*)::int AS "attempts",
             COUNT(*) FILTER (WHERE "outcome" <> 'OK')::int AS "errors",
             COUNT(*) FILTER (WHERE "outcome" = 'TIMEOUT')::int AS "timeouts",
             COUNT(*) FILTER (WHERE "outcome" = 'CUT')::int AS "cuts",
             round(percentile_cont(0.5) WITHIN GROUP (ORDER BY "firstTokenMs"))::int AS "medianFirstTokenMs",
             round(percentile_cont(0.95) WITHIN GROUP (ORDER BY "firstTokenMs"))::int AS "p95FirstTokenMs",
             COALESCE(SUM("costMicros") FILTER (WHERE "billed"), 0)::bigint AS "billedCostMicros",
             COALESCE(SUM("costMicros") FILTER (WHERE NOT "billed"), 0)::bigint AS "unbilledCostMicros"
      FROM "MessageAttempt"
      WHERE "startedAt" >= ${since}
      GROUP BY "provider"`,
  ]);
  const byProvider = new Map(rows.map((row) => [row.provider, row]));
  return health.map((provider) => {
    const row = byProvider.get(provider.id);
    return {
      ...provider,
      recent: {
        since,
        attempts: row?.attempts ?? 0,
        errors: row?.errors ?? 0,
        timeouts: row?.timeouts ?? 0,
        cuts: row?.cuts ?? 0,
        medianFirstTokenMs: row?.medianFirstTokenMs ?? null,
        p95FirstTokenMs: row?.p95FirstTokenMs ?? null,
        billedCostMicros: row?.billedCostMicros ?? 0n,
        unbilledCostMicros: row?.unbilledCostMicros ?? 0n,
      },
    };
  });
}
