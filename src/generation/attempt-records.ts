import type { PrismaClient } from '../db/client.js';
import { ZERO_METERED_USAGE } from '../metering/metering.js';
import { costMicros, type MeteredUsage } from '../metering/prices.js';
import { estimateCompletionTokens } from '../metering/tokens.js';
import type { RouteTarget } from '../providers/router.js';
import { producedOutput, type AttemptResult } from './attempt.js';

/** One upstream call of a reply, priced at its deployment's rate. */
export interface AttemptRecord {
  target: RouteTarget;
  result: AttemptResult;
  /** Sent with the reply's partial text as a prefill. */
  continued: boolean;
  usage: MeteredUsage;
  usageEstimated: boolean;
  costMicros: bigint;
  /** Charged to the user: its text is part of the reply (set once the reply ends). */
  billed: boolean;
}

/**
 * An attempt's usage: as the provider reported it; nothing for a call never sent or refused
 * before it did any work; otherwise an estimate (marked as such) of what the provider may bill,
 * its prompt (with the prefill it continued) and the text and tool calls it produced. A silent provider is
 * counted its prompt: whether it billed is unknown, and the operator would rather know.
 */
export function priceAttempt(target: RouteTarget, result: AttemptResult, promptEstimate: number, prefill: string | undefined): AttemptRecord {
  const continued = prefill !== undefined;
  const estimate = (): MeteredUsage => ({
    ...ZERO_METERED_USAGE,
    promptTokens: promptEstimate + (prefill ? estimateCompletionTokens(prefill) : 0),
    completionTokens: estimateCompletionTokens(result.text) + estimateCompletionTokens(result.toolCallText),
  });
  const worked = producedOutput(result) || result.outcome === 'TIMEOUT' || (result.outcome === 'OK' && result.sent);
  const [usage, usageEstimated] = result.usage
    ? [result.usage, false]
    : !result.sent || !worked
      ? [ZERO_METERED_USAGE, false]
      : [estimate(), true];
  return { target, result, continued, usage, usageEstimated, costMicros: costMicros(target.deployment.price, usage), billed: false };
}

/** Sums the usage of the billed attempts: what the user is charged for the reply. */
export function billedUsage(attempts: AttemptRecord[]): { usage: MeteredUsage; usageEstimated: boolean; costMicros: bigint } {
  const billed = attempts.filter((a) => a.billed);
  const sum = (key: keyof MeteredUsage) => billed.reduce((total, a) => total + a.usage[key], 0);
  return {
    usage: {
      promptTokens: sum('promptTokens'),
      cachedTokens: sum('cachedTokens'),
      cacheWriteTokens: sum('cacheWriteTokens'),
      completionTokens: sum('completionTokens'),
      reasoningTokens: sum('reasoningTokens'),
    },
    usageEstimated: billed.some((a) => a.usageEstimated),
    costMicros: billed.reduce((total, a) => total + a.costMicros, 0n),
  };
}

/** Writes a reply's attempts (idempotent: a retried write adds nothing). */
export async function saveAttempts(prisma: PrismaClient, reply: { messageId: string; userId: string }, attempts: AttemptRecord[]): Promise<void> {
  const rows = attempts.map((a, position) => ({
    messageId: reply.messageId,
    userId: reply.userId,
    position,
    provider: a.target.provider.id,
    model: a.target.model.id,
    upstreamModel: a.target.deployment.model,
    outcome: a.result.outcome,
    httpStatus: a.result.failure?.status ?? null,
    errorCode: a.result.failure ? (a.result.failure.errorCode ?? a.result.failure.kind) : null,
    continued: a.continued,
    promptTokens: a.usage.promptTokens,
    cachedTokens: a.usage.cachedTokens,
    cacheWriteTokens: a.usage.cacheWriteTokens,
    completionTokens: a.usage.completionTokens,
    reasoningTokens: a.usage.reasoningTokens,
    usageEstimated: a.usageEstimated,
    costMicros: a.costMicros,
    billed: a.billed,
    startedAt: a.result.startedAt,
    firstTokenMs: a.result.firstTokenMs ?? null,
    durationMs: a.result.durationMs,
  }));
  if (rows.length === 0) return;
  try {
    await prisma.messageAttempt.createMany({ data: rows, skipDuplicates: true });
  } catch (error) {
    // The message is gone (its conversation was deleted meanwhile): the attempts are kept without it.
    if ((error as { code?: string }).code !== 'P2003') throw error;
    await prisma.messageAttempt.createMany({ data: rows.map((row) => ({ ...row, messageId: null })) });
  }
}
