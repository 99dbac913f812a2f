import type { StreamEvent, StreamHub } from '../streams/stream-hub.js';
import type { PrismaClient } from '../db/client.js';
import type { Message } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import type { Metering } from '../metering/metering.js';
import { estimateCompletionTokens } from '../metering/tokens.js';
import { recordFinalMessage } from './finalize.js';

const SWEEP_BATCH = 100;
export const INTERRUPTED_ERROR = {
  code: 'INTERRUPTED',
  message: 'The server generating this reply stopped unexpectedly; the reply ends here.',
};

/**
 * Closes generations whose instance is gone (crashed, killed, cut off from the database, or
 * paused past its lease): the message ends with the text its last checkpoint saved, estimated
 * usage is charged through its reservation, and subscribers still waiting receive `done`. Safe
 * to run on every instance at once: settling a reservation is exactly-once. Should the instance
 * come back, its real usage corrects the estimate (see recordFinalMessage).
 */
export class GenerationRecovery {
  constructor(private readonly deps: { prisma: PrismaClient; hub: StreamHub; metering: Metering; logger: Logger }) {}

  /**
   * Closes running generations whose reservation's lease has lapsed, then settles lapsed
   * reservations left without a running message. With `everyRunning`, every open one, which is
   * right only when this process is the database's sole user (embedded PGlite) at start.
   * Returns how many generations it closed.
   */
  async recoverOrphans(options: { everyRunning?: boolean } = {}): Promise<number> {
    const { prisma, metering } = this.deps;
    const lapsedBefore = options.everyRunning ? new Date(8.64e15) : new Date();
    let closed = 0;
    for (;;) {
      const orphans = await prisma.$queryRaw<Message[]>`
        SELECT m.* FROM "Reservation" r JOIN "Message" m ON m."id" = r."messageId"
        WHERE r."settledAt" IS NULL AND r."leaseExpiresAt" < ${lapsedBefore} AND m."status" IN ('PENDING', 'STREAMING')
        ORDER BY r."leaseExpiresAt" LIMIT ${SWEEP_BATCH}`;
      let closedNow = 0;
      for (const message of orphans) {
        try {
          if (await this.close(message, 'FAILED')) closedNow += 1;
        } catch (error) {
          // One bad row must not stop the others, nor an instance's start-up.
          this.deps.logger.error({ err: error, messageId: message.id }, 'could not close an orphaned generation');
        }
      }
      closed += closedNow;
      // A batch that was not fully closed either was the last or hit a message another party holds.
      if (orphans.length < SWEEP_BATCH || closedNow < orphans.length) break;
    }
    await metering.sweep(lapsedBefore);
    return closed;
  }

  /**
   * Closes one abandoned generation with the longer of its saved text and what its stream
   * delivered (the replay buffer holds every event published, the checkpoint only what the last
   * lease renewal saved; they agree on the prefix); false when it had already ended.
   */
  async close(message: Message, status: 'FAILED' | 'STOPPED'): Promise<boolean> {
    const { prisma, logger } = this.deps;
    const reservation = await prisma.reservation.findFirst({ where: { messageId: message.id, settledAt: null } });
    if (!reservation) return false;
    const buffered = await this.bufferedDeltas(message.id);
    const streamed = gaplessPrefix(buffered);
    const content = closingText(message.content, streamed);
    const outcome = await recordFinalMessage(
      this.deps,
      {
        messageId: message.id,
        conversationId: message.conversationId,
        status,
        content,
        // Whether the upstream billed is unknown; charge as a stopped generation is charged.
        usage: {
          promptTokens: reservation.promptEstimate,
          cachedTokens: 0,
          cacheWriteTokens: 0,
          completionTokens: estimateCompletionTokens(content),
          reasoningTokens: 0,
        },
        usageEstimated: true,
        finishReason: status === 'STOPPED' ? 'stop_requested' : 'interrupted',
        error: status === 'FAILED' ? INTERRUPTED_ERROR : undefined,
      },
      { reservationId: reservation.id, by: 'RECOVERY' },
    );
    if (outcome !== 'recorded') return false;
    logger.warn({ messageId: message.id, status }, 'closed a generation whose instance is gone');
    // Past a gap, what subscribers hold is unknown: then they get only `done`.
    const lastSeq = buffered.at(-1)?.seq ?? 0;
    await this.finishStream(message.id, lastSeq, streamed.seq === lastSeq ? streamed.text : content, content);
    return true;
  }

  /** The text events buffered for replay, in order; none when the buffer cannot be read (the checkpoint then stands alone). */
  private async bufferedDeltas(messageId: string): Promise<StreamEvent[]> {
    try {
      return (await this.deps.hub.buffered(messageId)).filter((e) => !e.done).sort((a, b) => a.seq - b.seq);
    } catch (error) {
      this.deps.logger.warn({ err: error, messageId }, 'could not read the replay buffer of an abandoned generation');
      return [];
    }
  }

  /** Sends waiting subscribers what the buffer lacks of the saved text, then `done`. */
  private async finishStream(messageId: string, lastSeq: number, streamedText: string, content: string): Promise<void> {
    let seq = lastSeq;
    try {
      if (content.length > streamedText.length && content.startsWith(streamedText)) {
        seq += 1;
        await this.deps.hub.publish({ messageId, seq, delta: content.slice(streamedText.length), done: false });
      } else if (!content.startsWith(streamedText)) {
        seq += 1;
        await this.deps.hub.publish({ messageId, seq, delta: content, done: false, reset: true });
      }
      await this.deps.hub.publish({ messageId, seq: seq + 1, delta: '', done: true });
    } catch (error) {
      this.deps.logger.error({ err: error, messageId }, 'could not publish the end of a recovered stream');
    }
  }
}

/**
 * The text of the events from seq 1 up to the first one missing (what every subscriber received
 * in order), from its last reset, its last seq, and whether it was reset.
 */
function gaplessPrefix(events: StreamEvent[]): { text: string; seq: number; reset: boolean } {
  let text = '';
  let seq = 0;
  let reset = false;
  for (const event of events) {
    if (event.seq <= seq) continue;
    // A reset drops everything before it, a gap included; an event may stand for several (firstSeq).
    if ((event.firstSeq ?? event.seq) !== seq + 1 && !event.reset) break;
    seq = event.seq;
    if (event.reset) {
      text = '';
      reset = true;
    }
    text += event.delta;
  }
  return { text, seq, reset };
}

/**
 * The longer of the checkpoint and the streamed text where one carries on from the other. Where
 * neither does, the reply was restarted: the streamed text, which has the reset, is the newer
 * (a checkpoint is rewritten only at the next lease renewal).
 */
function closingText(checkpoint: string, streamed: { text: string; reset: boolean }): string {
  if (streamed.text.startsWith(checkpoint)) return streamed.text;
  if (checkpoint.startsWith(streamed.text)) return checkpoint;
  return streamed.reset ? streamed.text : checkpoint;
}
