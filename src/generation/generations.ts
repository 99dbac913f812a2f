import type { StreamEvent, StreamHub } from '../streams/stream-hub.js';
import type { PrismaClient } from '../db/client.js';
import type { Message } from '../generated/prisma/client.js';
import { shuttingDown } from '../errors.js';
import type { Logger } from '../logger.js';
import { RUNNING_STATUSES } from './finalize.js';
import type { GenerationRecovery } from './recovery.js';
import type { GenerationJob, GenerationRunner } from './runner.js';

const STOP_WAIT_MS = 10_000;
export const isFinal = (message: Pick<Message, 'status'>) => !RUNNING_STATUSES.includes(message.status);

/**
 * The one owner of a generation's lifecycle, whichever instance runs it: starting, following,
 * stopping (here or on the instance that runs it), and closing the ones whose instance is gone.
 */
export class Generations {
  private background?: { stop(): Promise<void> };
  /**
   * Reads of a message under way: the subscribers of a stream here are handed its `done` in the same
   * tick, so they share one read. A read that has ended is not kept: a late correction (an instance
   * presumed dead finishing its reply) must be what later readers see.
   */
  private readonly storedMessages = new Map<string, Promise<Message | null>>();

  constructor(
    private readonly deps: {
      prisma: PrismaClient;
      hub: StreamHub;
      runner: GenerationRunner;
      recovery: GenerationRecovery;
      logger: Logger;
      leaseMs: number;
    },
  ) {}

  /**
   * Closes what earlier processes left running, then, on every instance, sweeps for orphans once
   * per lease and answers stop requests for the generations running here.
   */
  async startBackgroundWork(options: { soleDatabaseUser: boolean }): Promise<void> {
    const { recovery, hub, runner, logger, leaseMs } = this.deps;
    // Embedded PGlite has one process by construction: whatever still runs at start was cut off.
    const recovered = await recovery.recoverOrphans({ everyRunning: options.soleDatabaseUser });
    if (recovered) logger.warn({ recovered }, 'closed generations left running by an earlier process');
    let sweep: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      sweep = sweep
        .then(() => recovery.recoverOrphans())
        .catch((error: unknown) => logger.error({ err: error }, 'could not sweep orphaned generations'));
    }, leaseMs);
    timer.unref();
    const stopListener = await hub.onStopRequested((messageId) => void runner.stopLocal(messageId));
    this.background = {
      stop: async () => {
        clearInterval(timer);
        await sweep;
        await stopListener();
      },
    };
  }

  /** Starts a generation; the promise settles once its final state is persisted and published. */
  start(job: GenerationJob): Promise<void> {
    return this.deps.runner.start(job);
  }

  /** False once shutdown has begun: new sends and followers are refused from then on. */
  get acceptingWork(): boolean {
    return this.deps.runner.acceptingWork;
  }

  /** Throws SHUTTING_DOWN once shutdown has begun. */
  assertAcceptingWork(): void {
    if (!this.acceptingWork) throw shuttingDown();
  }

  /**
   * Shutdown: running generations end STOPPED with their text and usage, and so does any started
   * later (by a request accepted before); background work ends. Called again, it waits for those.
   */
  async stopAll(): Promise<void> {
    await this.deps.runner.stopAll();
    const background = this.background;
    this.background = undefined;
    await background?.stop();
  }

  /** Stops a running generation wherever it runs; resolves once it is final. */
  async stop(messageId: string): Promise<void> {
    const { prisma, hub, runner, recovery } = this.deps;
    const local = runner.stopLocal(messageId);
    if (local) return local;
    const ended = this.waitForEnd(messageId, STOP_WAIT_MS);
    await hub.requestStop(messageId);
    if (await ended) return;
    // No instance answered: the one running it is gone, so it is closed here, usage and all.
    const message = await prisma.message.findUnique({ where: { id: messageId } });
    if (message && !isFinal(message)) await recovery.close(message, 'STOPPED');
  }

  /** Whether the user's reply is being generated in this process (then it exists, and is an assistant message). */
  runsHereFor(userId: string, messageId: string): boolean {
    return this.deps.runner.ownerOfRunning(messageId) === userId;
  }

  /** Events for a subscriber: replay, then live, ending with `done`. */
  follow(messageId: string): AsyncGenerator<StreamEvent> {
    return this.deps.hub.subscribe(messageId, async () => {
      const message = await this.storedMessage(messageId);
      return message && { content: message.content, final: isFinal(message) };
    });
  }

  /** The message as a stream's `done` leaves it, read once per instance for all its subscribers. */
  async finalMessage(messageId: string): Promise<Message | null> {
    const message = await this.storedMessage(messageId);
    // A read started before the message became final (a subscriber's check) is not the final row.
    return message && !isFinal(message) ? this.storedMessage(messageId) : message;
  }

  private storedMessage(messageId: string): Promise<Message | null> {
    const known = this.storedMessages.get(messageId);
    if (known) return known;
    const reading = (async () => this.deps.prisma.message.findUnique({ where: { id: messageId } }))();
    this.storedMessages.set(messageId, reading);
    const forget = () => this.storedMessages.delete(messageId);
    reading.then(forget, forget);
    return reading;
  }

  private async waitForEnd(messageId: string, timeoutMs: number): Promise<boolean> {
    const events = this.follow(messageId);
    const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
    const ended = (async () => {
      for await (const event of events) if (event.done) return true;
      return false;
    })();
    const result = await Promise.race([ended, timeout]);
    await events.return(undefined);
    return result;
  }
}
