import type { PrismaClient } from '../db/client.js';
import { badInput, notFound } from '../errors.js';
import type { Conversation } from '../generated/prisma/client.js';
import { findModel, type ModelInfo } from '../model-catalog.js';

export const MAX_TITLE_LENGTH = 200;
export const MAX_SYSTEM_PROMPT_LENGTH = 20_000;
const GENERATED_TITLE_LENGTH = 60;
export const PLACEHOLDER_TITLE = 'New conversation';

/** A title from the first message: its first line, cut at a word boundary. */
export function titleFromMessage(content: string): string {
  const line = content.trim().split('\n')[0]!.replace(/\s+/g, ' ').trim();
  if (line.length <= GENERATED_TITLE_LENGTH) return line || PLACEHOLDER_TITLE;
  const cut = line.slice(0, GENERATED_TITLE_LENGTH);
  const lastSpace = cut.lastIndexOf(' ');
  return `${(lastSpace > 20 ? cut.slice(0, lastSpace) : cut).trimEnd()}…`;
}

export function checkTitle(title: string): string {
  const trimmed = title.trim();
  if (!trimmed || trimmed.length > MAX_TITLE_LENGTH) throw badInput(`Title must be 1 to ${MAX_TITLE_LENGTH} characters`, 'title');
  return trimmed;
}

export function checkSystemPrompt(systemPrompt: string | null | undefined): string | null {
  if (systemPrompt == null || systemPrompt.trim() === '') return null;
  if (systemPrompt.length > MAX_SYSTEM_PROMPT_LENGTH) {
    throw badInput(`System prompt must be at most ${MAX_SYSTEM_PROMPT_LENGTH} characters`, 'systemPrompt');
  }
  return systemPrompt;
}

export function resolveModel(models: ModelInfo[], id: string): ModelInfo {
  const model = findModel(models, id);
  if (!model) throw badInput(`Unknown model "${id.slice(0, 100)}"; see Query.models`, 'model');
  return model;
}

async function findOwnConversation(prisma: PrismaClient, userId: string, id: string): Promise<Conversation> {
  const conversation = await prisma.conversation.findFirst({ where: { id, userId } });
  if (!conversation) throw notFound('Conversation');
  return conversation;
}

export interface ConversationDeps {
  prisma: PrismaClient;
  models: ModelInfo[];
  defaultModel: string;
}

export async function createConversation(
  deps: ConversationDeps,
  userId: string,
  input: { title?: string | null; model?: string | null; systemPrompt?: string | null },
): Promise<Conversation> {
  const model = resolveModel(deps.models, input.model ?? deps.defaultModel);
  return deps.prisma.conversation.create({
    data: {
      userId,
      title: input.title == null ? PLACEHOLDER_TITLE : checkTitle(input.title),
      model: model.id,
      systemPrompt: checkSystemPrompt(input.systemPrompt),
    },
  });
}

export async function updateConversation(
  deps: ConversationDeps,
  userId: string,
  id: string,
  input: { title?: string | null; model?: string | null; systemPrompt?: string | null },
): Promise<Conversation> {
  await findOwnConversation(deps.prisma, userId, id);
  return deps.prisma.conversation.update({
    where: { id },
    data: {
      ...(input.title != null ? { title: checkTitle(input.title) } : {}),
      ...(input.model != null ? { model: resolveModel(deps.models, input.model).id } : {}),
      // An explicit empty string clears the system prompt; null/absent leaves it.
      ...(input.systemPrompt !== undefined && input.systemPrompt !== null
        ? { systemPrompt: checkSystemPrompt(input.systemPrompt) }
        : {}),
    },
  });
}

/** Archives a conversation (hidden from the list unless asked for) or brings it back. */
export async function archiveConversation(prisma: PrismaClient, userId: string, id: string, archived: boolean): Promise<Conversation> {
  const { count } = await prisma.conversation.updateMany({ where: { id, userId }, data: { archived } });
  if (count === 0) throw notFound('Conversation');
  return prisma.conversation.findUniqueOrThrow({ where: { id } });
}

/** The longest conversation search a client may send. */
export const MAX_SEARCH_LENGTH = 200;

/**
 * Which of a user's conversations a list shows: archived or not, and, with a search, those whose
 * title or any message contains it, in any case (trigram indexes serve the ILIKE).
 */
export function conversationFilter(options: { archived?: boolean | null; search?: string | null }) {
  const search = options.search?.trim();
  if (search && search.length > MAX_SEARCH_LENGTH) throw badInput(`A search may have at most ${MAX_SEARCH_LENGTH} characters`, 'search');
  return {
    archived: options.archived ?? false,
    ...(search
      ? {
          OR: [
            { title: { contains: search, mode: 'insensitive' as const } },
            { messages: { some: { content: { contains: search, mode: 'insensitive' as const } } } },
          ],
        }
      : {}),
  };
}

/** Deletes a conversation with its messages. Usage roll-ups stay: they are what was billed. */
export async function deleteConversation(prisma: PrismaClient, userId: string, id: string): Promise<void> {
  const { count } = await prisma.conversation.deleteMany({ where: { id, userId } });
  if (count === 0) throw notFound('Conversation');
}
