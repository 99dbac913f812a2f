import type { StreamEvent, ToolCallDelta } from './stream-hub.js';

/**
 * Turns a generation's deltas into its stream's events, in order: each upstream chunk becomes
 * one event, with the next seq and its offset in the reply, handed to the hub at once. The hub
 * publishes a stream of this instance without waiting (its subscribers here get the event
 * now, Redis gets it behind them), so nothing upstream ever waits for the stream either.
 */
export class DeltaPublisher {
  private lastSeq = 0;
  /** Characters published since the last reset. */
  private offset = 0;
  /** The next event starts the text anew. */
  private resetDue = false;

  constructor(
    private readonly messageId: string,
    private readonly publish: (event: StreamEvent) => void,
  ) {}

  /** True once any text was handed over: from then on it may have reached a client. */
  get started(): boolean {
    return this.offset > 0;
  }

  push(delta: string): void {
    if (!delta) return;
    this.publishNext(delta, false);
    this.offset += delta.length;
  }

  /** A piece of a tool call, published as an event of its own. */
  pushToolCall(delta: ToolCallDelta): void {
    this.publishNext('', false, [delta]);
  }

  /** Drops the text and tool calls pushed so far: the next event tells subscribers to, and starts at offset 0. */
  reset(): void {
    this.offset = 0;
    this.resetDue = true;
  }

  /** After the final message is recorded: publishes `done`, after everything pushed. */
  finish(): void {
    this.publishNext('', true);
  }

  private publishNext(delta: string, done: boolean, toolCallDeltas?: ToolCallDelta[]): void {
    const event: StreamEvent = { messageId: this.messageId, seq: ++this.lastSeq, delta, done, offset: this.offset };
    if (this.resetDue) event.reset = true;
    if (toolCallDeltas) event.toolCallDeltas = toolCallDeltas;
    this.resetDue = false;
    this.publish(event);
  }
}
