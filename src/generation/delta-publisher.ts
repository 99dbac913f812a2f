import type { Logger } from '../logger.js';
import type { StreamEvent } from '../chat/stream-hub.js';

/**
 * Publishes a generation's deltas in order without making the upstream wait for the hub: while
 * one event is being published, the deltas that arrive are joined into the next one. A fast hub
 * sends every upstream chunk on its own; a slow one (Redis under load) gets fewer, larger events
 * instead of a backlog, and every subscriber has fewer events to process.
 */
export class DeltaPublisher {
  private pending = '';
  private publishing: Promise<void> | undefined;
  private seq = 0;
  private failed = false;

  constructor(
    private readonly messageId: string,
    private readonly publish: (event: StreamEvent) => Promise<void>,
    private readonly logger: Logger,
  ) {}

  /** True once any text was handed over: from then on it may have reached a client. */
  get started(): boolean {
    return this.seq > 0 || this.pending.length > 0;
  }

  push(delta: string): void {
    if (!delta) return;
    this.pending += delta;
    this.publishing ??= this.publishPending();
  }

  /** Waits until everything pushed is published (one more try for text a failure held back); returns the last seq. */
  async drain(): Promise<number> {
    while (this.publishing) await this.publishing;
    if (this.pending) {
      this.publishing = this.publishPending();
      await this.publishing;
    }
    return this.seq;
  }

  private async publishPending(): Promise<void> {
    while (this.pending) {
      const delta = this.pending;
      this.pending = '';
      try {
        await this.publish({ messageId: this.messageId, seq: this.seq + 1, delta, done: false });
        this.seq += 1;
      } catch (error) {
        // Keep the text and its place, so seq stays gapless: the next delta (or drain) retries it.
        this.pending = delta + this.pending;
        if (!this.failed) this.logger.error({ err: error, messageId: this.messageId }, 'could not publish a stream event');
        this.failed = true;
        break;
      }
    }
    this.publishing = undefined;
  }
}
