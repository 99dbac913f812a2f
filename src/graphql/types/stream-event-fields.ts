import type { StreamEvent, ToolCallDelta } from '../../streams/stream-hub.js';
import { encodeGlobalId } from '../../global-id.js';

/**
 * What each leaf field of a stream event gives. The schema's resolvers and the events built
 * without the executor (stream-event-shortcut.ts) share these, so the two cannot differ.
 */
export const streamEventLeaves = {
  messageId: (e: StreamEvent) => encodeGlobalId('Message', e.messageId),
  seq: (e: StreamEvent) => e.seq,
  firstSeq: (e: StreamEvent) => e.firstSeq ?? e.seq,
  delta: (e: StreamEvent) => e.delta,
  reset: (e: StreamEvent) => e.reset === true,
  done: (e: StreamEvent) => e.done,
};

export const toolCallDeltaLeaves = {
  index: (d: ToolCallDelta) => d.index,
  id: (d: ToolCallDelta) => d.id ?? null,
  name: (d: ToolCallDelta) => d.name ?? null,
  argumentsDelta: (d: ToolCallDelta) => d.argumentsDelta,
};

/** The event's fields that read the stored reply: null on every event but the final one. */
export const FINAL_EVENT_FIELDS = new Set(['message', 'usage']);

export const streamEventToolCallDeltas = (e: StreamEvent) => e.toolCallDeltas ?? [];
