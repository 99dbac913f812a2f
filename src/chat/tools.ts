import type { ToolLimits } from '../config.js';
import { badInput } from '../errors.js';
import type { Message } from '../generated/prisma/client.js';
import type { ChatTurn, ToolCall } from '../metering/tokens.js';
import type { ToolChoice, ToolDefinition } from '../providers/provider.js';
import { invalidSchemaReason } from './response-format.js';

export interface ToolInput {
  name: string;
  description?: string | null;
  parameters?: unknown;
}

export interface ToolResultInput {
  toolCallId: string;
  content: string;
}

/** The tools a reply may call and how, as stored with the reply and sent again with the next one. */
export interface ToolSet {
  tools: ToolDefinition[];
  toolChoice: ToolChoice;
}

const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const CHOICE_WORDS = new Set(['auto', 'none', 'required']);
/** What a tool without parameters is described as: both OpenAI and Anthropic want an object schema. */
const NO_PARAMETERS = { type: 'object', properties: {} };

/**
 * Checks the tools a send offers, before any call: at most `maxTools`, each named uniquely,
 * its parameters a valid JSON Schema of an object, the whole definition at most `maxSchemaBytes`
 * as JSON; toolChoice one of the words or an offered tool's name. None offered: undefined.
 */
export function checkTools(tools: ToolInput[] | null | undefined, toolChoice: string | null | undefined, limits: ToolLimits): ToolSet | undefined {
  if (!tools?.length) {
    if (toolChoice != null) throw badInput('toolChoice needs tools', 'toolChoice');
    return undefined;
  }
  if (tools.length > limits.maxTools) throw badInput(`At most ${limits.maxTools} tools`, 'tools');
  const names = new Set<string>();
  const definitions = tools.map((tool, index) => {
    const field = `tools.${index}`;
    if (!TOOL_NAME.test(tool.name)) throw badInput('A tool name must be 1 to 64 letters, digits, _ or -', `${field}.name`);
    if (names.has(tool.name)) throw badInput(`Two tools are named ${tool.name}`, `${field}.name`);
    names.add(tool.name);
    const definition: ToolDefinition = {
      name: tool.name,
      ...(tool.description ? { description: tool.description } : {}),
      parameters: checkParameters(tool.parameters, `${field}.parameters`),
    };
    if (Buffer.byteLength(JSON.stringify(definition)) > limits.maxSchemaBytes) {
      throw badInput(`A tool's definition must be at most ${limits.maxSchemaBytes} bytes as JSON`, field);
    }
    return definition;
  });
  return { tools: definitions, toolChoice: checkToolChoice(toolChoice ?? 'auto', names) };
}

function checkParameters(parameters: unknown, field: string): Record<string, unknown> {
  if (parameters == null) return NO_PARAMETERS;
  if (typeof parameters !== 'object' || Array.isArray(parameters)) throw badInput('Tool parameters must be a JSON Schema object', field);
  const schema = parameters as Record<string, unknown>;
  if (schema.type !== 'object') throw badInput('Tool parameters must be the JSON Schema of an object (type: "object")', field);
  const invalid = invalidSchemaReason(schema);
  if (invalid) throw badInput(`Tool parameters are not a valid JSON Schema: ${invalid}`, field);
  return schema;
}

function checkToolChoice(choice: string, names: Set<string>): ToolChoice {
  if (CHOICE_WORDS.has(choice)) return choice as ToolChoice;
  if (names.has(choice)) return { name: choice };
  throw badInput('toolChoice must be auto, none, required or the name of an offered tool', 'toolChoice');
}

/**
 * After the results, the model may call tools again, but is no longer made to: a `required` or
 * named choice would have it call tools forever. `none` stays.
 */
export function toolChoiceAfterResults(choice: ToolChoice): ToolChoice {
  return choice === 'none' ? 'none' : 'auto';
}

/**
 * Checks the results submitted for a reply's calls: each answers one of its calls, each call is
 * answered exactly once, and each result is at most `maxResultLength` characters. Returns them in
 * the order of the calls, which is the order the providers expect.
 */
export function checkToolResults(calls: ToolCall[], results: ToolResultInput[], limits: ToolLimits): ToolResultInput[] {
  const byId = new Map<string, ToolResultInput>();
  results.forEach((result, index) => {
    const field = `results.${index}`;
    if (!calls.some((call) => call.id === result.toolCallId)) throw badInput(`No tool call ${result.toolCallId.slice(0, 100)} in this reply`, `${field}.toolCallId`);
    if (byId.has(result.toolCallId)) throw badInput(`Tool call ${result.toolCallId.slice(0, 100)} is answered twice`, `${field}.toolCallId`);
    if (result.content.length > limits.maxResultLength) throw badInput(`A tool result must be at most ${limits.maxResultLength} characters`, `${field}.content`);
    byId.set(result.toolCallId, result);
  });
  const unanswered = calls.find((call) => !byId.has(call.id));
  if (unanswered) throw badInput(`Tool call ${unanswered.id} has no result`, 'results');
  return calls.map((call) => byId.get(call.id)!);
}

/** The tool calls stored with a message (a jsonb column), none when it made none. */
export function storedToolCalls(message: Pick<Message, 'toolCalls'>): ToolCall[] {
  return Array.isArray(message.toolCalls) ? (message.toolCalls as unknown as ToolCall[]) : [];
}

/** The tools stored with a reply, to be offered again with the reply that follows its results. */
export function storedToolSet(message: Pick<Message, 'tools' | 'toolChoice'>): ToolSet | undefined {
  if (!Array.isArray(message.tools) || message.tools.length === 0) return undefined;
  const choice = message.toolChoice ?? 'auto';
  return {
    tools: message.tools as unknown as ToolDefinition[],
    toolChoice: CHOICE_WORDS.has(choice) ? (choice as ToolChoice) : { name: choice },
  };
}

/** How a tool choice is stored: the word, or the tool's name. */
export function storedToolChoice(choice: ToolChoice): string {
  return typeof choice === 'string' ? choice : choice.name;
}

/** A stored message as a turn of the prompt, with the calls it made or the call it answers. */
export function chatTurnOf(message: Pick<Message, 'role' | 'content' | 'toolCalls' | 'toolCallId'>): ChatTurn {
  if (message.role === 'TOOL') return { role: 'tool', content: message.content, toolCallId: message.toolCallId ?? '' };
  if (message.role !== 'ASSISTANT') return { role: 'user', content: message.content };
  const toolCalls = storedToolCalls(message);
  return toolCalls.length > 0 ? { role: 'assistant', content: message.content, toolCalls } : { role: 'assistant', content: message.content };
}

/** Whether a stored message says anything to the model: text, tool calls, or a tool's result (which may be empty). */
export function carriesContent(message: Pick<Message, 'role' | 'content' | 'toolCalls'>): boolean {
  return message.content.length > 0 || message.role === 'TOOL' || storedToolCalls(message).length > 0;
}

/**
 * The turns with only the tool calls that were answered: a reply whose calls got no results (the
 * user wrote on instead) is sent as its text alone, or left out when it has none, since
 * providers refuse calls that no result follows.
 */
export function withAnsweredToolCalls(turns: ChatTurn[]): ChatTurn[] {
  return turns.flatMap((turn, index) => {
    if (!turn.toolCalls?.length || turns[index + 1]?.role === 'tool') return [turn];
    const { toolCalls: _unanswered, ...text } = turn;
    return text.content ? [text] : [];
  });
}
