import type { PrismaClient } from '../db/client.js';
import type { Message } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import { findModel, type ModelInfo } from '../model-catalog.js';
import type { UsageMetrics } from '../observability/metrics.js';
import { quotaPeriodOf } from '../usage/quota.js';
import { recordFinalMessage, RUNNING_STATUSES } from '../usage/record.js';
import { estimateCompletionTokens } from '../usage/tokens.js';
import type { StreamHub } from './stream-hub.js';

const SWEEP_BATCH = 100;
export const INTERRUPTED_ERROR = {
  code: 'INTERRUPTED',
  message: 'The server generating this reply stopped unexpectedly; the reply ends here.',
};

/**
 * Closes generations whose instance is gone (crashed, killed, cut off from the database): the
 * message ends with the text it got to, estimated usage is recorded and its quota reservation
 * settled, and subscribers still waiting receive `done`. Safe to run on every instance at once:
 * closing is conditional on the message still running, so only one party ever records it.
 */
export class GenerationRecovery {
  constructor(
    private readonly deps: { prisma: PrismaClient; hub: StreamHub; models: ModelInfo[]; logger: Logger; metrics: UsageMetrics },
  ) {}

  /**
   * Closes running generations whose lease has lapsed; with `everyRunning`, all running ones,
   * which is right only when this process is the database's sole user (embedded PGlite) at start.
   * Returns how many it closed.
   */
  async recoverOrphans(options: { everyRunning?: boolean } = {}): Promise<number> {
    let closed = 0;
    for (;;) {
      const orphans = await this.deps.prisma.message.findMany({
        where: {
          role: 'ASSISTANT',
          status: { in: RUNNING_STATUSES },
          ...(options.everyRunning ? {} : { leaseExpiresAt: { lt: new Date() } }),
        },
        orderBy: { id: 'asc' },
        take: SWEEP_BATCH,
      });
      let closedNow = 0;
      for (const message of orphans) if (await this.close(message, 'FAILED')) closedNow += 1;
      closed += closedNow;
      // A batch that was not fully closed either was the last or hit a message another party holds.
      if (orphans.length < SWEEP_BATCH || closedNow < orphans.length) return closed;
    }
  }

  /** Closes one abandoned generation; false when it had already ended. */
  async close(message: Message, status: 'FAILED' | 'STOPPED'): Promise<boolean> {
    const { prisma, hub, logger } = this.deps;
    const buffered = (await hub.buffered(message.id)).filter((e) => !e.done).sort((a, b) => a.seq - b.seq);
    const streamedText = buffered.map((e) => e.delta).join('');
    // The lease checkpoint and the replay buffer hold prefixes of the same text; keep the longer.
    const content = message.content.length > streamedText.length ? message.content : streamedText;
    const closed = await recordFinalMessage(
      prisma,
      {
        messageId: message.id,
        conversationId: message.conversationId,
        userId: message.userId,
        model: this.modelOf(message),
        status,
        content,
        // Whether the upstream billed is unknown; charge as a stopped generation is charged.
        promptTokens: message.promptEstimate,
        completionTokens: estimateCompletionTokens(content),
        usageEstimated: true,
        finishReason: status === 'STOPPED' ? 'stop_requested' : 'interrupted',
        error: status === 'FAILED' ? INTERRUPTED_ERROR : undefined,
      },
      {
        userId: message.userId,
        period: message.reservationPeriod ?? quotaPeriodOf(message.createdAt),
        tokens: message.reservedTokens,
      },
      this.deps.metrics,
    );
    if (!closed) return false;
    logger.warn({ messageId: message.id, status }, 'closed a generation whose instance is gone');
    await this.finishStream(message.id, buffered.at(-1)?.seq ?? 0, streamedText, content);
    return true;
  }

  /** Sends waiting subscribers what the buffer lacks of the saved text, then `done`. */
  private async finishStream(messageId: string, lastSeq: number, streamedText: string, content: string): Promise<void> {
    let seq = lastSeq;
    try {
      if (content.length > streamedText.length && content.startsWith(streamedText)) {
        seq += 1;
        await this.deps.hub.publish({ messageId, seq, delta: content.slice(streamedText.length), done: false });
      }
      await this.deps.hub.publish({ messageId, seq: seq + 1, delta: '', done: true });
    } catch (error) {
      this.deps.logger.error({ err: error, messageId }, 'could not publish the end of a recovered stream');
    }
  }

  /** The model's prices; one removed from the catalog since is recorded at no cost. */
  private modelOf(message: Message): ModelInfo {
    const id = message.model ?? 'unknown';
    return (
      findModel(this.deps.models, id) ?? {
        id,
        provider: 'unknown',
        contextWindow: 0,
        maxOutputTokens: 0,
        promptMicrosPerMillion: 0,
        completionMicrosPerMillion: 0,
        isDemo: false,
      }
    );
  }
}

/** Looks for orphaned generations once per lease on every instance; `stop` waits for a sweep in progress. */
export function startOrphanSweeper(recovery: GenerationRecovery, leaseMs: number, logger: Logger): { stop(): Promise<void> } {
  let sweep: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    sweep = sweep
      .then(() => recovery.recoverOrphans())
      .catch((error: unknown) => logger.error({ err: error }, 'could not sweep orphaned generations'));
  }, leaseMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await sweep;
    },
  };
}
