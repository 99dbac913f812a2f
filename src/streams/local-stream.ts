import type { StreamEvent } from './stream-hub.js';

/**
 * A stream published by this instance, as its subscribers here see it: every event so far, which
 * a subscriber joining replays exactly as the others received it, and the subscribers following
 * it. Kept in memory until it ended and the replay store has all of it (this instance holds the
 * text anyway); subscribers that still hold it afterwards replay it whole, `done` included.
 */
export class LocalStream {
  private readonly published: StreamEvent[] = [];
  private readonly followers = new Set<(event: StreamEvent) => void>();
  private ended = false;

  /**
   * While it runs, this record is the whole stream: its subscribers need no stored message (which
   * a recovery may have closed meanwhile, the run here then correcting it). Once it ended without
   * `done` (its run failed), they end on the stored message.
   */
  get running(): boolean {
    return !this.ended;
  }

  /** Hands the event to every subscriber here, at once; false for a seq already published (a retry). */
  publish(event: StreamEvent): boolean {
    if (this.ended || event.seq <= (this.published.at(-1)?.seq ?? 0)) return false;
    this.published.push(event);
    if (event.done) this.ended = true;
    for (const follower of this.followers) follower(event);
    return true;
  }

  /** What a subscriber joining now replays. The events are shared, never changed: whoever takes one copies it. */
  replay(): StreamEvent[] {
    return [...this.published];
  }

  /** No more events from here (the run ended, `done` published or not). */
  end(): void {
    this.ended = true;
  }

  follow(follower: (event: StreamEvent) => void): () => void {
    this.followers.add(follower);
    return () => void this.followers.delete(follower);
  }
}
