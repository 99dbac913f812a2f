import type { ContentBlockParam, MessageCreateParamsStreaming, ToolChoice as AnthropicToolChoice } from '@anthropic-ai/sdk/resources/messages';
import type { ChatTurn } from '../metering/tokens.js';
import { anthropicImageBlocks } from './image-parts.js';
import type { ChatRequest, ToolChoice } from './provider.js';

/**
 * Sent as the first turn when a conversation does not begin with the user's (it opens with an
 * assistant's greeting, or has only system turns): the Messages API wants a user turn first.
 */
export const CONVERSATION_START = '(conversation start)';

/** A request in the Messages API's terms. */
export interface MessagesRequest {
  params: MessageCreateParamsStreaming;
  /**
   * Whitespace cut from the end of the prefill (see `messagesRequest`): the caller holds it
   * already, so the reply must not repeat it.
   */
  prefillWhitespace: string;
}

/**
 * Translates a request: system turns go to the `system` parameter; user and assistant turns must
 * alternate, beginning with the user's, so consecutive turns of one role are joined; blank turns,
 * which the API refuses, are left out. An assistant turn's tool calls become `tool_use` blocks,
 * and tool turns `tool_result` blocks of a user turn (consecutive results join into one).
 *
 * The prefill is sent as a trailing assistant turn that the model continues. The API refuses a
 * final assistant turn ending in whitespace, so the prefill's trailing whitespace is cut off, and
 * the model, continuing "Hello", usually begins by restoring it (" world"). The caller already
 * holds "Hello ", so `prefillWhitespace` tells the reply to drop that space again: the caller then
 * gets "world", and "Hello " + "world" reads as the model wrote it.
 */
export function messagesRequest(request: ChatRequest): MessagesRequest {
  const system = request.messages
    .filter((turn) => turn.role === 'system' && !isBlank(turn.content))
    .map((turn) => turn.content)
    .join('\n\n');
  const turns: Array<{ role: 'user' | 'assistant'; content: string | ContentBlockParam[] }> = [];
  const append = (role: 'user' | 'assistant', content: string | ContentBlockParam[]) => {
    if (blocksOf(content).length === 0) return;
    const last = turns.at(-1);
    if (last?.role !== role) turns.push({ role, content });
    else if (typeof last.content === 'string' && typeof content === 'string') last.content = `${last.content}\n\n${content}`;
    else last.content = [...blocksOf(last.content), ...blocksOf(content)];
  };
  for (const turn of request.messages) {
    if (turn.role === 'tool') append('user', [toolResultBlock(turn)]);
    else if (turn.role === 'assistant' && turn.toolCalls?.length) append('assistant', [...blocksOf(turn.content), ...toolUseBlocks(turn)]);
    // A user turn's images go before its text, as Anthropic advises.
    else if (turn.role === 'user' && turn.images?.length) append('user', [...anthropicImageBlocks(turn.images), ...blocksOf(turn.content)]);
    else if (turn.role !== 'system') append(turn.role, turn.content);
  }
  const prefill = request.prefill ?? '';
  const kept = prefill.trimEnd();
  append('assistant', kept);
  if (turns[0]?.role !== 'user') turns.unshift({ role: 'user', content: CONVERSATION_START });
  const last = turns.at(-1);
  // A conversation that itself ends with an assistant turn is continued the same way.
  if (last?.role === 'assistant') last.content = trimEndOf(last.content);
  return {
    params: {
      model: request.model,
      max_tokens: request.maxTokens,
      messages: turns,
      ...(system ? { system } : {}),
      ...anthropicSampling(request),
      ...anthropicOutputFormat(request),
      ...anthropicTools(request),
      stream: true,
    },
    prefillWhitespace: prefill.slice(kept.length),
  };
}

/**
 * Drops from the start of the reply the whitespace cut from the prefill, as far as the reply
 * repeats it, across as many deltas as that takes. Other whitespace, or none, is passed on as is.
 */
export function afterPrefill(prefillWhitespace: string): (delta: string) => string {
  let pending = prefillWhitespace;
  return (delta) => {
    let repeated = 0;
    while (pending && repeated < delta.length && delta[repeated] === pending[0]) {
      pending = pending.slice(1);
      repeated += 1;
    }
    if (repeated < delta.length) pending = '';
    return delta.slice(repeated);
  };
}

const isBlank = (text: string) => text.trim() === '';

/** A turn's content as blocks; blank text is none. */
function blocksOf(content: string | ContentBlockParam[]): ContentBlockParam[] {
  if (typeof content !== 'string') return content;
  return isBlank(content) ? [] : [{ type: 'text', text: content }];
}

function trimEndOf(content: string | ContentBlockParam[]): string | ContentBlockParam[] {
  if (typeof content === 'string') return content.trimEnd();
  const last = content.at(-1);
  return last?.type === 'text' ? [...content.slice(0, -1), { ...last, text: last.text.trimEnd() }] : content;
}

/**
 * The calls as `tool_use` blocks, whose input is the arguments parsed. Arguments that are not a
 * JSON object (a model's slip) go as an empty input rather than making the whole request fail.
 */
function toolUseBlocks(turn: ChatTurn): ContentBlockParam[] {
  return (turn.toolCalls ?? []).map((call) => ({ type: 'tool_use', id: call.id, name: call.name, input: parsedInput(call.arguments) }));
}

function parsedInput(json: string): Record<string, unknown> {
  try {
    const input: unknown = JSON.parse(json);
    return typeof input === 'object' && input !== null && !Array.isArray(input) ? (input as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function toolResultBlock(turn: ChatTurn): ContentBlockParam {
  return { type: 'tool_result', tool_use_id: turn.toolCallId ?? '', ...(turn.content ? { content: turn.content } : {}) };
}

/** Anthropic's `tools` (the parameters as `input_schema`) and `tool_choice`. */
function anthropicTools(request: ChatRequest): Pick<MessageCreateParamsStreaming, 'tools' | 'tool_choice'> {
  if (!request.tools?.length) return {};
  return {
    tools: request.tools.map((tool) => ({
      name: tool.name,
      ...(tool.description ? { description: tool.description } : {}),
      input_schema: tool.parameters as { type: 'object' },
    })),
    tool_choice: anthropicToolChoice(request.toolChoice ?? 'auto'),
  };
}

function anthropicToolChoice(choice: ToolChoice): AnthropicToolChoice {
  if (typeof choice !== 'string') return { type: 'tool', name: choice.name };
  // Anthropic calls "required" "any".
  return { type: choice === 'required' ? 'any' : choice };
}

/**
 * The sampling Anthropic's Messages API takes: temperature, `top_p` (not both: newer models refuse
 * the pair, and temperature is kept) and `stop_sequences`. It has no seed, no penalties and no
 * reasoning effort: those are left out.
 */
function anthropicSampling(request: ChatRequest): { temperature?: number; top_p?: number; stop_sequences?: string[] } {
  const { topP, stop } = request.sampling ?? {};
  return {
    ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
    ...(topP === undefined || request.temperature !== undefined ? {} : { top_p: topP }),
    ...(stop?.length ? { stop_sequences: stop } : {}),
  };
}

/**
 * Structured output on Anthropic: `output_config.format` with the JSON Schema; a reply asked to
 * be any JSON object gets the schema of an object.
 */
function anthropicOutputFormat(request: ChatRequest): { output_config?: { format: { type: 'json_schema'; schema: Record<string, unknown> } } } {
  const format = request.responseFormat;
  if (!format || format.type === 'text') return {};
  const schema = format.type === 'json_schema' ? format.schema : { type: 'object' };
  return { output_config: { format: { type: 'json_schema', schema } } };
}
