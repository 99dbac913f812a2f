import { v7 as uuidv7 } from 'uuid';
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

/** A reply's attempts as generation_record_final writes them (generation_save_attempts), in the order they were made. */
export function attemptRows(reply: { userId: string }, attempts: AttemptRecord[]) {
  return attempts.map((a, position) => ({
    id: uuidv7(),
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
    costMicros: a.costMicros.toString(),
    billed: a.billed,
    startedAt: a.result.startedAt.toISOString(),
    firstTokenMs: a.result.firstTokenMs ?? null,
    durationMs: a.result.durationMs,
  }));
}

export type AttemptRow = ReturnType<typeof attemptRows>[number];
