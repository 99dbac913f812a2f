import type { PrismaClient } from '../db/client.js';
import type { MessageStatus } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import type { Metering, SettleAnswer, SettleRequest } from '../metering/metering.js';
import type { MeteredUsage } from '../metering/prices.js';
import type { ToolCall } from '../metering/tokens.js';
import type { AttemptRow } from './attempt-records.js';

export interface FinalMessage {
  messageId: string;
  conversationId: string;
  status: MessageStatus;
  content: string;
  /** The tool calls the reply asked for, if any. */
  toolCalls?: ToolCall[];
  usage: MeteredUsage;
  usageEstimated: boolean;
  finishReason?: string | null;
  error?: { code: string; message: string };
  /** The catalog model and provider whose answer ends the reply, when known (a fallback's). */
  finishedBy?: { model: string; provider: string };
}

/** A generation in one of these is still running (or was, when its instance died). */
export const RUNNING_STATUSES: MessageStatus[] = ['PENDING', 'STREAMING'];

export type FinalOutcome = 'recorded' | 'corrected' | 'already-final';

/**
 * Closes a generation: its reservation is settled (quota, credits, roll-up) and its message
 * written with the usage and cost, or neither, in one statement (generation_record_final).
 * Settling is exactly-once, so when two parties race (the generation itself and a recovery after
 * its instance was presumed dead) one records it. When the generation itself comes second, with
 * the real reply and usage, the same statement corrects what the recovery recorded by estimate, once.
 * `settlement`: how to settle the reservation (see SettleRequest); the usage is the message's.
 * `attempts`: the reply's upstream calls, written by the same statement (a recovery has none).
 */
export async function recordFinalMessage(
  deps: { prisma: PrismaClient; metering: Metering; logger: Logger },
  final: FinalMessage,
  settlement: Omit<SettleRequest, 'usage'>,
  attempts: AttemptRow[] = [],
): Promise<FinalOutcome> {
  const { prisma, metering, logger } = deps;
  const settled = await metering.settleThrough(prisma, { ...settlement, usage: final.usage }, async (settle) => {
    const params = { settle, message: finalMessageParams(final), attempts };
    const [row] = await prisma.$queryRaw<[{ answer: SettleAnswer }]>`
      SELECT "generation_record_final"(${JSON.stringify(params)}::jsonb) AS "answer"`;
    return row.answer;
  });
  if (!settled) return 'already-final';
  if (settled.corrected) {
    logger.warn({ messageId: final.messageId }, 'corrected a generation closed while its instance was presumed dead, with its real usage');
    return 'corrected';
  }
  metering.countCharged(settled.model, final.usage, settled.costMicros);
  return 'recorded';
}

function finalMessageParams(final: FinalMessage) {
  return {
    id: final.messageId,
    conversationId: final.conversationId,
    status: final.status,
    content: final.content,
    toolCalls: final.toolCalls ?? null,
    usageEstimated: final.usageEstimated,
    finishReason: final.finishReason ?? null,
    errorCode: final.error?.code ?? null,
    errorMessage: final.error?.message ?? null,
    model: final.finishedBy?.model ?? null,
    provider: final.finishedBy?.provider ?? null,
  };
}
