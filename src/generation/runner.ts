import type { StreamHub } from '../streams/stream-hub.js';
import type { ChatProvider, ProviderFailure } from '../providers/provider.js';
import type { PrismaClient } from '../db/client.js';
import type { Logger } from '../logger.js';
import { ZERO_METERED_USAGE, type Metering } from '../metering/metering.js';
import type { MeteredUsage, ModelPrice } from '../metering/prices.js';
import { estimateCompletionTokens, type ChatTurn } from '../metering/tokens.js';
import type { ModelInfo } from '../model-catalog.js';
import type { Metrics } from '../observability/metrics.js';
import { DeltaPublisher } from '../streams/delta-publisher.js';
import { recordFinalMessage, RUNNING_STATUSES, type FinalMessage, type FinalOutcome } from './finalize.js';

export interface GenerationJob {
  messageId: string;
  conversationId: string;
  userId: string;
  model: ModelInfo;
  messages: ChatTurn[];
  maxTokens: number;
  temperature?: number;
  promptEstimate: number;
  /** The metering reservation holding the call's worst case; settled when the generation ends. */
  reservationId: string;
}

export interface GenerationSettings {
  /** Longest wait for the first chunk, and between chunks. */
  upstreamTimeoutMs: number;
  /** Hard cap on one generation, however steadily it streams. */
  generationMaxMs: number;
  maxAttempts: number;
  /** How long a generation's lease lasts; it is renewed three times per lease while it runs. */
  leaseMs: number;
}

interface Running {
  stop(): void;
  finished: Promise<void>;
}

const MAX_RETRY_WAIT_MS = 10_000;
const RETRYABLE = new Set(['rate_limited', 'server_error', 'connection', 'timeout', 'cut']);
const RECORD_RETRY_MS = 250;
const RECORD_RETRY_MAX_MS = 2_000;
/** How late an idle timer may fire before the process counts as having been paused. */
const LATE_TIMER_MS = 1_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A retry's wait, cut short by a stop (or shutdown): the retry is then never sent. */
const waitUnlessStopped = (ms: number, stop: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      stop.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    stop.addEventListener('abort', done, { once: true });
  });

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
      provider: ChatProvider;
      metering: Metering;
      settings: GenerationSettings;
      logger: Logger;
      metrics: Pick<Metrics, 'generation'>;
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
    this.deps.hub.publishHere(job.messageId);
    const finished = this.run(job, stopController).finally(() => {
      this.running.delete(job.messageId);
      this.deps.hub.stopPublishingHere(job.messageId);
      running.dec();
    });
    this.running.set(job.messageId, { stop: () => stopController.abort(), finished });
    return finished;
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

  private async run(job: GenerationJob, stopController: AbortController): Promise<void> {
    const { hub, logger } = this.deps;
    const metrics = this.deps.metrics.generation;
    const started = performance.now();
    const elapsedSeconds = () => (performance.now() - started) / 1000;
    const stopSignal = stopController.signal;
    let text = '';
    const publisher = new DeltaPublisher(job.messageId, (event) => hub.publish(event), logger, this.deps.settings.leaseMs);
    let usage: MeteredUsage | undefined;
    let finishReason: string | null = null;
    let failure: ProviderFailure | undefined;
    // Whether the last attempt's request went out: a call never sent costs nothing.
    let sent = false;
    const deadline = Date.now() + this.deps.settings.generationMaxMs;
    // A message deleted, or stopped elsewhere (its owner asked while this instance seemed gone), is
    // not worth finishing. One closed by a recovery after a lapsed lease is: the upstream bills the
    // whole reply, and the real reply and usage then correct what the recovery estimated.
    const lease = this.keepLease(job, () => text, () => stopController.abort());

    for (let attempt = 1; ; attempt += 1) {
      failure = undefined;
      const attemptResult = await this.attempt(job, stopSignal, deadline, (delta) => {
        if (!text) metrics.timeToFirstToken.observe({ model: job.model.id }, elapsedSeconds());
        text += delta;
        publisher.push(delta);
      });
      usage = attemptResult.usage ?? usage;
      finishReason = attemptResult.finishReason ?? finishReason;
      failure = attemptResult.failure;
      sent = attemptResult.sent;
      if (failure) metrics.upstreamErrors.inc({ status: failure.status ? String(failure.status) : 'none' });
      if (attemptResult.timedOut && !attemptResult.usage && !publisher.started) this.recordUnbilledAttempt(job, attempt);
      // Retry only while nothing has reached a client: once a token is out, a retry would repeat it.
      const mayRetry = failure && RETRYABLE.has(failure.kind) && !publisher.started && !stopSignal.aborted && attempt < this.deps.settings.maxAttempts;
      if (!mayRetry) break;
      const waitMs = Math.min((failure?.retryAfterSeconds ?? 2 ** (attempt - 1) * 0.25) * 1000, MAX_RETRY_WAIT_MS);
      logger.warn({ messageId: job.messageId, attempt, status: failure?.status, waitMs }, 'retrying upstream call');
      await waitUnlessStopped(waitMs, stopSignal);
    }

    await publisher.drain();
    const stopped = stopSignal.aborted;
    const final: FinalMessage = {
      messageId: job.messageId,
      conversationId: job.conversationId,
      content: text,
      status: stopped ? 'STOPPED' : failure ? 'FAILED' : 'COMPLETE',
      ...this.usageFor(job, text, usage, failure, sent),
      finishReason: stopped ? 'stop_requested' : failure ? 'error' : finishReason,
      error: failure && !stopped ? { code: 'UPSTREAM_ERROR', message: failure.message } : undefined,
    };
    // The lease is renewed while the record is retried, so that no recovery closes the message meanwhile.
    const outcome = await this.record(final, job.reservationId, job.model.price);
    await lease.end();
    metrics.duration.observe({ model: job.model.id, status: final.status }, elapsedSeconds());
    await publisher.finish();
    // A recovery had closed the stream with a shorter text: late subscribers now replay the corrected message.
    if (outcome === 'corrected') {
      await hub.discardReplay(job.messageId).catch((error: unknown) => logger.warn({ err: error, messageId: job.messageId }, 'could not drop the replay of a corrected stream'));
    }
  }

  /**
   * Records the end of a generation, retrying with backoff (settling is exactly-once, so a retry
   * cannot charge twice) for up to two leases. The lease is still renewed meanwhile, so a failure
   * the renewals survive closes nothing; through a database outage it lapses, a recovery may close
   * the message by estimate first, and this write then corrects it with the real text and usage.
   */
  private async record(final: FinalMessage, reservationId: string, price: ModelPrice): Promise<FinalOutcome | undefined> {
    const giveUpAt = Date.now() + 2 * this.deps.settings.leaseMs;
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await recordFinalMessage(this.deps, final, { reservationId, by: 'RUN', price });
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
  private keepLease(job: GenerationJob, textSoFar: () => string, giveUp: () => void): { end(): Promise<void> } {
    const { prisma, metering, settings, logger } = this.deps;
    const { messageId } = job;
    let renewal: Promise<unknown> = Promise.resolve();
    let saved = '';
    const renew = async () => {
      const held = await metering.renewLease(job.reservationId, settings.leaseMs);
      // The text only grows: write only when there is more than was saved last time.
      const text = textSoFar();
      if (held && text.length <= saved.length) return;
      if ((await appendCheckpoint(prisma, messageId, saved, text)) || (await rewriteCheckpoint(prisma, messageId, text))) {
        saved = text;
        return;
      }
      const message = await prisma.message.findUnique({ where: { id: messageId }, select: { status: true } });
      if (!message || message.status === 'STOPPED') giveUp();
    };
    const timer = setInterval(() => {
      renewal = renew().catch((error: unknown) => logger.warn({ err: error, messageId }, 'could not renew a generation lease'));
    }, settings.leaseMs / 3);
    timer.unref();
    return {
      end: async () => {
        clearInterval(timer);
        await renewal;
      },
    };
  }

  /**
   * Usage as reported by the upstream; when it reported none (stopped, failed mid-way, or an
   * upstream that omits it) an estimate from the local tokenizer, marked as such. A call never
   * sent (stopped, or shut down, before it or during a retry's wait), or one that failed before
   * any output, costs nothing.
   */
  private usageFor(
    job: GenerationJob,
    text: string,
    reported: MeteredUsage | undefined,
    failure: ProviderFailure | undefined,
    sent: boolean,
  ): { usage: MeteredUsage; usageEstimated: boolean } {
    if (reported) return { usage: reported, usageEstimated: false };
    if (!sent || (failure && text.length === 0)) return { usage: ZERO_METERED_USAGE, usageEstimated: false };
    return {
      usage: { ...ZERO_METERED_USAGE, promptTokens: job.promptEstimate, completionTokens: estimateCompletionTokens(text) },
      usageEstimated: true,
    };
  }

  /**
   * An attempt that timed out before any output, whose usage nobody is charged: the provider may
   * have billed its prompt, but the user gets one reply and pays for the attempt that made it,
   * and the operator's cost of the others is counted here (by estimate) to reconcile with the
   * provider's bill.
   */
  private recordUnbilledAttempt(job: GenerationJob, attempt: number): void {
    this.deps.metrics.generation.unbilledAttemptTokens.inc({ model: job.model.id }, job.promptEstimate);
    this.deps.logger.warn(
      { messageId: job.messageId, attempt, model: job.model.id, promptEstimate: job.promptEstimate },
      'an upstream attempt timed out: the provider may bill its prompt, the user is not charged for it',
    );
  }

  private async attempt(
    job: GenerationJob,
    stopSignal: AbortSignal,
    deadline: number,
    onDelta: (delta: string) => void,
  ): Promise<{
    usage?: MeteredUsage;
    finishReason?: string;
    failure?: ProviderFailure;
    /** The request went to the upstream. */
    sent: boolean;
    timedOut?: boolean;
  }> {
    const controller = new AbortController();
    const onStop = () => controller.abort('stopped');
    stopSignal.addEventListener('abort', onStop);
    let idleTimer: NodeJS.Timeout | undefined;
    let chunks = 0;
    let ended = false;
    const armIdleTimer = () => {
      clearTimeout(idleTimer);
      const wait = Math.min(this.deps.settings.upstreamTimeoutMs, Math.max(0, deadline - Date.now()));
      const armedAt = Date.now();
      const chunksWhenArmed = chunks;
      idleTimer = setTimeout(() => {
        // A timer that fires late means this process was paused or starved, and the upstream's
        // data may be waiting unread in the socket: timers run before I/O. Let the I/O phase
        // run first, and time out only if nothing came, or (late) nothing came over a fresh wait.
        const late = Date.now() - armedAt > wait + LATE_TIMER_MS;
        setImmediate(() => {
          if (ended || chunks !== chunksWhenArmed) return;
          if (late) armIdleTimer();
          else controller.abort('timeout');
        });
      }, wait);
    };
    let usage: MeteredUsage | undefined;
    let finishReason: string | undefined;
    let sent = false;
    try {
      if (stopSignal.aborted) return { sent };
      armIdleTimer();
      sent = true;
      const events = this.deps.provider.stream(
        { model: job.model.id, messages: job.messages, maxTokens: job.maxTokens, temperature: job.temperature, reasoning: job.model.reasoning },
        // The idle timer above is the timeout (it tells a paused process from a silent upstream);
        // the provider's own must not race it, so here it only bounds the whole generation.
        { signal: controller.signal, timeoutMs: this.deps.settings.generationMaxMs },
      );
      for await (const event of events) {
        chunks += 1;
        armIdleTimer();
        if (event.type === 'usage') usage = event.usage;
        else if (event.type === 'finish') finishReason = event.reason;
        else if (event.type === 'text' && event.delta && !controller.signal.aborted) onDelta(event.delta);
      }
      // Aborting does not throw: the loop just ends, so the reason is checked here.
      if (controller.signal.aborted) {
        return controller.signal.reason === 'timeout'
          ? { usage, failure: this.deps.provider.describeFailure(undefined, { reason: 'timeout' }), sent, timedOut: true }
          : { usage, sent };
      }
      return { usage, finishReason, sent };
    } catch (error) {
      if (controller.signal.reason === 'stopped') return { usage, sent };
      const timedOut = controller.signal.reason === 'timeout';
      return { usage, failure: this.deps.provider.describeFailure(error, { reason: timedOut ? 'timeout' : undefined, started: chunks > 0 }), sent, timedOut };
    } finally {
      ended = true;
      clearTimeout(idleTimer);
      stopSignal.removeEventListener('abort', onStop);
    }
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
