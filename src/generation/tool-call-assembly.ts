import { randomUUID } from 'node:crypto';
import type { ToolCall } from '../metering/tokens.js';
import type { ToolCallDelta } from '../streams/stream-hub.js';

/** The tool calls of a reply, put together from the pieces the provider streams. */
export class ToolCallAssembly {
  private readonly calls = new Map<number, { id?: string; name: string; arguments: string }>();

  add(delta: ToolCallDelta): void {
    const call = this.calls.get(delta.index) ?? { name: '', arguments: '' };
    if (delta.id) call.id = delta.id;
    if (delta.name) call.name = delta.name;
    call.arguments += delta.argumentsDelta;
    this.calls.set(delta.index, call);
  }

  get size(): number {
    return this.calls.size;
  }

  clear(): void {
    this.calls.clear();
  }

  /**
   * The calls in the order the model wrote them. A call whose provider gave it no id gets one,
   * so that its result can name it; a call without arguments takes none (`{}`).
   */
  list(): ToolCall[] {
    return [...this.calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, call]) => {
        call.id ??= `call_${randomUUID().replaceAll('-', '')}`;
        return { id: call.id, name: call.name, arguments: call.arguments || '{}' };
      });
  }
}
