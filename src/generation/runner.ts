import type { StreamEvent, StreamHub } from '../streams/stream-hub.js';
import type { PrismaClient } from '../db/client.js';
import type { Logger } from '../logger.js';
import type { Metering } from '../metering/metering.js';
import type { ChatTurn } from '../metering/tokens.js';
import type { ModelInfo } from '../model-catalog.js';
import type { Metrics } from '../observability/metrics.js';
import type { ResponseFormat, Sampling } from '../providers/provider.js';
import type { ToolSet } from '../chat/tools.js';
import type { Circuit, RouteTarget } from '../providers/router.js';
import { DeltaPublisher } from '../streams/delta-publisher.js';
import { attemptRows, billedUsage, type AttemptRecord } from './attempt-records.js';
import { generateAlongRoute, type ReplyText } from './failover.js';
import { recordFinalMessage, RUNNING_STATUSES, type FinalMessage, type FinalOutcome } from './finalize.js';
import { ToolCallAssembly } from './tool-call-assembly.js';

export interface GenerationJob {
  messageId: string;
  conversationId: string;
  userId: string;
  model: ModelInfo;
  messages: ChatTurn[];
  maxTokens: number;
  temperature?: number;
  sampling?: Sampling;
  responseFormat?: ResponseFormat;
  /** The tools the model may call, and how. */
  toolSet?: ToolSet;
  promptEstimate: number;
  /** The metering reservation holding the call's worst case; settled when the generation ends. */
  reservationId: string;
}

export interface GenerationSettings {
  /** Longest wait for the first chunk, and between chunks, unless the provider or model says otherwise. */
  upstreamTimeoutMs: number;
  /** Longest wait for a first token before moving on, while another deployment or fallback is left. */
  failoverFirstTokenMs: number;
  /** Hard cap on one generation, however steadily it streams. */
  generationMaxMs: number;
  /** Attempts per deployment while no token has reached a client. */
  maxAttempts: number;
  /** How long a generation's lease lasts; it is renewed three times per lease while it runs. */
  leaseMs: number;
  /** Bytes of tool-call arguments one reply may write (MAX_TOOL_ARGUMENTS_BYTES). */
  maxToolArgumentsBytes: number;
}

interface Running {
  userId: string;
  stop(): void;
  finished: Promise<void>;
}

const RECORD_RETRY_MS = 250;
const RECORD_RETRY_MAX_MS = 2_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));



/**
 * Runs generations independently of any client: tokens go to the stream hub, the final state
 * and usage to the database. Whatever happens (done, stop, upstream failure, timeout, shutdown)
 * the message ends in a final status with its usage recorded.
 */
export class GenerationRunner {
  private readonly running = new Map<string, Running>();
  private stopping = false;

  constructor(
    private readonly deps: {
      prisma: PrismaClient;
      hub: StreamHub;
      /** The targets of a reply for a catalog model, in the order they are tried. */
      route: (model: ModelInfo) => RouteTarget[];
      circuit: Circuit;
      metering: Metering;
      settings: GenerationSettings;
      logger: Logger;
      metrics: Pick<Metrics, 'generation' | 'upstream'>;
    },
  ) {}

  /** Starts a generation; the promise settles once its final state is persisted and published. */
  start(job: GenerationJob): Promise<void> {
    const stopController = new AbortController();
    // Started by a request accepted before shutdown began: it ends STOPPED at once, without calling the upstream.
    if (this.stopping) stopController.abort();
    const { running } = this.deps.metrics.generation;
    running.inc();
    // Before sendMessage returns: whoever follows the reply on this instance is then handed its events directly.
    const publish = this.deps.hub.publishHere(job.messageId);
    const finished = this.run(job, stopController, publish).finally(() => {
      this.running.delete(job.messageId);
      this.deps.hub.stopPublishingHere(job.messageId);
      running.dec();
    });
    this.running.set(job.messageId, { userId: job.userId, stop: () => stopController.abort(), finished });
    return finished;
  }

  /** Whose reply a generation running in this process is; undefined when it does not run here. */
  ownerOfRunning(messageId: string): string | undefined {
    return this.running.get(messageId)?.userId;
  }

  /** Stops a generation running in this process; false when it is not here. */
  stopLocal(messageId: string): Promise<void> | undefined {
    const running = this.running.get(messageId);
    if (!running) return undefined;
    running.stop();
    return running.finished;
  }

  /**
   * Shutdown: stop everything, and whatever starts from now on, and wait until each message is
   * persisted, including those started while waiting.
   */
  async stopAll(): Promise<void> {
    this.stopping = true;
    while (this.running.size > 0) {
      const all = [...this.running.values()];
      for (const running of all) running.stop();
      await Promise.allSettled(all.map((r) => r.finished));
    }
  }

  /** False once shutdown has begun: whatever starts from then on is stopped at once. */
  get acceptingWork(): boolean {
    return !this.stopping;
  }

  get size(): number {
    return this.running.size;
  }

  private async run(job: GenerationJob, stopController: AbortController, publish: (event: StreamEvent) => void): Promise<void> {
    const { hub, logger } = this.deps;
    const metrics = this.deps.metrics.generation;
    const started = performance.now();
    const elapsedSeconds = () => (performance.now() - started) / 1000;
    const stopSignal = stopController.signal;
    const reply: ReplyText = { text: '', toolCalls: new ToolCallAssembly(), version: 0 };
    const publisher = new DeltaPublisher(job.messageId, publish);
    // A message deleted, or stopped elsewhere (its owner asked while this instance seemed gone), is
    // not worth finishing. One closed by a recovery after a lapsed lease is: the upstream bills the
    // whole reply, and the real reply and usage then correct what the recovery estimated.
    const lease = this.keepLease(job, () => reply, () => stopController.abort());
    const attempts: AttemptRecord[] = [];
    let firstText = true;
    const outcome = await generateAlongRoute(this.deps, job, stopSignal, { reply, publisher, attempts }, () => {
      if (firstText) metrics.timeToFirstToken.observe({ model: job.model.id }, elapsedSeconds());
      firstText = false;
    });

    const stopped = stopSignal.aborted;
    const failure = stopped ? undefined : outcome.failure;
    const charged = billedUsage(attempts);
    const finishedBy = outcome.finishedBy ?? attempts.findLast((a) => a.billed)?.target;
    const final: FinalMessage = {
      messageId: job.messageId,
      conversationId: job.conversationId,
      content: reply.text,
      ...(reply.toolCalls.size > 0 ? { toolCalls: reply.toolCalls.list() } : {}),
      status: stopped ? 'STOPPED' : failure ? 'FAILED' : 'COMPLETE',
      usage: charged.usage,
      usageEstimated: charged.usageEstimated,
      finishReason: stopped ? 'stop_requested' : failure ? (failure.kind === 'content_filter' ? 'content_filter' : 'error') : (outcome.finishReason ?? null),
      error: failure ? { code: failure.kind === 'content_filter' ? 'CONTENT_FILTERED' : 'UPSTREAM_ERROR', message: failure.message } : undefined,
      ...(finishedBy ? { finishedBy: { model: finishedBy.model.id, provider: finishedBy.provider.id } } : {}),
    };
    for (const a of attempts) {
      if (!a.billed && a.usage.promptTokens > 0) metrics.unbilledAttemptTokens.inc({ model: a.target.model.id }, a.usage.promptTokens);
    }
    // The lease is renewed while the record is retried, so that no recovery closes the message meanwhile.
    const recorded = await this.record(final, job, attempts, finishedBy, charged.costMicros);
    await lease.end();
    metrics.duration.observe({ model: job.model.id, status: final.status }, elapsedSeconds());
    publisher.finish();
    // A recovery had closed the stream with a shorter text: late subscribers now replay the corrected message.
    if (recorded === 'corrected') {
      await hub.discardReplay(job.messageId).catch((error: unknown) => logger.warn({ err: error, messageId: job.messageId }, 'could not drop the replay of a corrected stream'));
    }
  }

  /**
   * Records the end of a generation, retrying with backoff (settling is exactly-once, so a retry
   * cannot charge twice) for up to two leases. The lease is still renewed meanwhile, so a failure
   * the renewals survive closes nothing; through a database outage it lapses, a recovery may close
   * the message by estimate first, and this write then corrects it with the real text and usage.
   */
  private async record(
    final: FinalMessage,
    job: GenerationJob,
    attempts: AttemptRecord[],
    finishedBy: RouteTarget | undefined,
    costMicros: bigint,
  ): Promise<FinalOutcome | undefined> {
    const giveUpAt = Date.now() + 2 * this.deps.settings.leaseMs;
    // The same ids on every try, so that a retry of a write whose answer was lost adds nothing.
    const rows = attemptRows(job, attempts);
    for (let attempt = 1; ; attempt += 1) {
      try {
        // Charged: the billed attempts, each at its deployment's price, under the model that finished the reply.
        const settlement = { reservationId: job.reservationId, by: 'RUN' as const, price: job.model.price, model: finishedBy?.model.id, costMicros };
        return await recordFinalMessage(this.deps, final, settlement, rows);
      } catch (error) {
        const waitMs = Math.min(RECORD_RETRY_MS * 2 ** (attempt - 1), RECORD_RETRY_MAX_MS);
        const last = Date.now() + waitMs > giveUpAt;
        this.deps.logger.error({ err: error, messageId: final.messageId, attempt }, last ? 'could not record the final message' : 'retrying the record of a final message');
        if (last) return undefined;
        await sleep(waitMs);
      }
    }
  }

  /**
   * While a generation runs its reservation's lease is renewed and its text so far saved, so
   * that if this process dies another instance can tell (the lease lapses) and close the message
   * with that text. Each checkpoint appends only what came since the last one, so a long reply
   * costs writes in proportion to its length. `giveUp` runs when the message is gone or was
   * stopped elsewhere.
   */
  private keepLease(job: GenerationJob, textSoFar: () => ReplyText, giveUp: () => void): { end(): Promise<void> } {
    const { prisma, metering, settings, logger } = this.deps;
    const { messageId } = job;
    let renewal: Promise<unknown> = Promise.resolve();
    let saved: Omit<ReplyText, 'toolCalls'> = { text: '', version: 0 };
    const renew = async () => {
      const held = await metering.renewLease(job.reservationId, settings.leaseMs);
      // The text only grows, until a restart: write only when there is more than was saved last time.
      const { text, version } = textSoFar();
      const sameText = version === saved.version;
      if (held && sameText && text.length <= saved.text.length) return;
      if ((sameText && (await appendCheckpoint(prisma, messageId, saved.text, text))) || (await rewriteCheckpoint(prisma, messageId, text))) {
        saved = { text, version };
        return;
      }
      const message = await prisma.message.findUnique({ where: { id: messageId }, select: { status: true } });
      if (!message || message.status === 'STOPPED') giveUp();
    };
    let renewing = false;
    const timer = setInterval(() => {
      // One renewal at a time: two racing would both append the same text, and the loser rewrite it all.
      if (renewing) return;
      renewing = true;
      renewal = renew()
        .catch((error: unknown) => logger.warn({ err: error, messageId }, 'could not renew a generation lease'))
        .finally(() => (renewing = false));
    }, settings.leaseMs / 3);
    timer.unref();
    return {
      end: async () => {
        clearInterval(timer);
        await renewal;
      },
    };
  }

}

/**
 * Appends to a running message's saved text what came since the last checkpoint, provided the
 * database still holds exactly that checkpoint (its length in bytes); false otherwise.
 */
async function appendCheckpoint(prisma: PrismaClient, messageId: string, saved: string, text: string): Promise<boolean> {
  const appended = await prisma.$executeRaw`
    UPDATE "Message" SET "content" = "content" || ${text.slice(saved.length)}, "updatedAt" = ${new Date()}
    WHERE "id" = ${messageId}::uuid AND "status" IN ('PENDING', 'STREAMING')
      AND octet_length("content") = ${Buffer.byteLength(saved)}`;
  return appended === 1;
}

/** Saves the whole text of a running message (a checkpoint whose answer was lost may have been written); false once it is final. */
async function rewriteCheckpoint(prisma: PrismaClient, messageId: string, text: string): Promise<boolean> {
  const saved = await prisma.message.updateMany({ where: { id: messageId, status: { in: RUNNING_STATUSES } }, data: { content: text } });
  return saved.count === 1;
}
