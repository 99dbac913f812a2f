import type { Logger } from '../logger.js';
import { appendToolCallDeltas, type StreamEvent, type ToolCallDelta } from './stream-hub.js';

const FIRST_RETRY_MS = 100;
const LONGEST_RETRY_MS = 2_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Publishes a generation's deltas in order without making the upstream wait for the hub: while
 * one event is being published, the deltas that arrive are joined into the next one. A fast hub
 * sends every upstream chunk on its own; a slow one (Redis under load) gets fewer, larger events
 * instead of a backlog, and every subscriber has fewer events to process.
 *
 * An event that fails is sent again as it was (same seq, same text: the store ignores a second
 * copy) with backoff, for up to `retryForMs` (the lease: past it the reply may be taken over).
 * One given up leaves a hole in `seq` that subscribers see and fill from the stored message, so
 * nothing, `done` included, is ever published over a gap as if it were whole.
 */
export class DeltaPublisher {
  private pending = '';
  private pendingToolCalls: ToolCallDelta[] = [];
  /** The next event starts the text anew. */
  private pendingReset = false;
  private publishing: Promise<void> | undefined;
  private lastSeq = 0;
  /** Characters pushed before `pending`. */
  private offset = 0;
  private loggedFailure = false;

  constructor(
    private readonly messageId: string,
    private readonly publish: (event: StreamEvent) => Promise<void>,
    private readonly logger: Logger,
    private readonly retryForMs: number,
  ) {}

  /** True once any text was handed over: from then on it may have reached a client. */
  get started(): boolean {
    return this.offset > 0 || this.pending.length > 0;
  }

  push(delta: string): void {
    if (!delta) return;
    this.pending += delta;
    this.publishing ??= this.publishPending();
  }

  /** A piece of a tool call, published with the text around it (joined like text when the hub is slow). */
  pushToolCall(delta: ToolCallDelta): void {
    appendToolCallDeltas(this.pendingToolCalls, [delta]);
    this.publishing ??= this.publishPending();
  }

  /** Drops the text and tool calls pushed so far: subscribers are told to, and what comes next starts at offset 0. */
  reset(): void {
    this.pending = '';
    this.pendingToolCalls = [];
    this.offset = 0;
    this.pendingReset = true;
    this.publishing ??= this.publishPending();
  }

  /** Waits until everything pushed is published, or given up after retrying. */
  async drain(): Promise<void> {
    while (this.publishing) await this.publishing;
  }

  /** After the final message is recorded: publishes `done`, after everything pushed. */
  async finish(): Promise<void> {
    await this.drain();
    const done: StreamEvent = { messageId: this.messageId, seq: this.lastSeq + 1, delta: '', done: true, offset: this.offset };
    if (!(await this.publishWithRetries(done))) {
      this.logger.error({ messageId: this.messageId }, 'could not publish the end of a stream');
    }
  }

  private async publishPending(): Promise<void> {
    while (this.pending || this.pendingReset || this.pendingToolCalls.length > 0) {
      const event: StreamEvent = { messageId: this.messageId, seq: this.lastSeq + 1, delta: this.pending, done: false, offset: this.offset };
      if (this.pendingReset) event.reset = true;
      if (this.pendingToolCalls.length > 0) event.toolCallDeltas = this.pendingToolCalls;
      this.offset += this.pending.length;
      this.pending = '';
      this.pendingToolCalls = [];
      this.pendingReset = false;
      // Published or given up, its seq is used: a given-up one is a gap subscribers can see.
      this.lastSeq = event.seq;
      await this.publishWithRetries(event);
    }
    this.publishing = undefined;
  }

  private async publishWithRetries(event: StreamEvent): Promise<boolean> {
    const giveUpAt = Date.now() + this.retryForMs;
    for (let wait = FIRST_RETRY_MS; ; wait = Math.min(wait * 2, LONGEST_RETRY_MS)) {
      try {
        await this.publish(event);
        return true;
      } catch (error) {
        if (!this.loggedFailure) this.logger.error({ err: error, messageId: this.messageId }, 'could not publish a stream event; retrying');
        this.loggedFailure = true;
        if (Date.now() + wait > giveUpAt) return false;
        await sleep(wait);
      }
    }
  }
}
