import type { StreamEvent } from './stream-hub.js';

/**
 * A stream published by this instance, as its subscribers here see it: every event handed to
 * them so far, which a subscriber joining replays exactly as the others received it, and the
 * subscribers following it. Kept in memory until it ended and the replay store has all of it
 * (this instance holds the text anyway); subscribers that still hold it afterwards replay it whole.
 */
export class LocalStream {
  private readonly published: StreamEvent[] = [];
  private readonly followers = new Set<(event: StreamEvent) => void>();
  private lastAccepted = 0;
  private lastPublished = 0;
  /** No more events are taken: `done` was, or the run ended. */
  private ending = false;

  /**
   * While it runs, this record is the whole stream: its subscribers need no stored message (which
   * a recovery may have closed meanwhile, the run here then correcting it). Once it ended without
   * `done` (its run failed), they end on the stored message.
   */
  get running(): boolean {
    return !(this.ending && this.lastPublished === this.lastAccepted);
  }

  /** Takes an event to publish; false for a seq already taken (a retry), or once the stream ended. */
  accept(event: StreamEvent): boolean {
    if (this.ending || event.seq <= this.lastAccepted) return false;
    this.lastAccepted = event.seq;
    if (event.done) this.ending = true;
    return true;
  }

  /** Hands an accepted event to every subscriber here, in seq order. */
  publish(event: StreamEvent): void {
    this.lastPublished = event.seq;
    this.published.push(event);
    for (const follower of this.followers) follower(event);
  }

  /** What a subscriber joining now replays. The events are shared, never changed: whoever takes one copies it. */
  replay(): StreamEvent[] {
    return [...this.published];
  }

  /** No more events from here (the run ended, `done` published or not); those accepted are still handed over. */
  end(): void {
    this.ending = true;
  }

  follow(follower: (event: StreamEvent) => void): () => void {
    this.followers.add(follower);
    return () => void this.followers.delete(follower);
  }
}
