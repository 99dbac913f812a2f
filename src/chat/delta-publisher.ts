import type { Logger } from '../logger.js';
import type { StreamEvent } from './stream-hub.js';

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

  /** Waits until everything pushed is published; returns the seq of the last event. */
  async drain(): Promise<number> {
    while (this.publishing) await this.publishing;
    return this.seq;
  }

  private async publishPending(): Promise<void> {
    while (this.pending) {
      const delta = this.pending;
      this.pending = '';
      this.seq += 1;
      try {
        await this.publish({ messageId: this.messageId, seq: this.seq, delta, done: false });
      } catch (error) {
        // The text is still persisted with the message (and sent with `done`); say it once.
        if (!this.failed) this.logger.error({ err: error, messageId: this.messageId }, 'could not publish a stream event');
        this.failed = true;
      }
    }
    this.publishing = undefined;
  }
}
