import type { PrismaClient } from '../db/client.js';
import { badInput, notFound } from '../errors.js';
import { Prisma, type Attachment, type Conversation, type Message } from '../generated/prisma/client.js';
import { carriesContent } from './tools.js';

/** The most turns of a branch sent back to a provider; older ones are dropped first anyway. */
export const HISTORY_LIMIT = 200;

/** A turn of a branch as the prompt planner takes it. */
export type HistoryTurn = Pick<Message, 'id' | 'role' | 'content' | 'toolCalls' | 'toolCallId'>;

// What a provider is shown of a branch: finished turns with text, tool calls or a tool's result, never another branch.
const SENT_STATUSES = ['COMPLETE', 'STOPPED'] as const;

/** Where a stored image is, as a turn of the history lists it: its URL, or (an upload) only its id and type. */
export type StoredImageRef = Pick<Attachment, 'id' | 'messageId' | 'url' | 'mimeType'>;

/** A stored turn read with its image references (an upload's bytes are read only if it is sent again). */
export type HistoryTurnWithImages = HistoryTurn & { attachments: StoredImageRef[] };

const IMAGE_REFS = { select: { id: true, messageId: true, url: true, mimeType: true }, orderBy: { position: 'asc' } } as const;

/**
 * The caller's conversation with the end of its current branch, root to leaf, as sent to a
 * provider, and the images of that branch (references: an upload's bytes are read only if it is
 * sent), in one statement. NOT_FOUND when the conversation is not the caller's.
 */
export async function findOwnConversationWithHistory(
  prisma: PrismaClient,
  userId: string,
  conversationId: string,
): Promise<{ conversation: Conversation; history: HistoryTurnWithImages[] }> {
  const found = await prisma.conversation.findFirst({
    where: { id: conversationId, userId },
    include: {
      messages: {
        where: { onCurrentBranch: true, status: { in: [...SENT_STATUSES] }, role: { not: 'SYSTEM' } },
        orderBy: { id: 'desc' },
        take: HISTORY_LIMIT,
        select: {
          id: true,
          role: true,
          content: true,
          toolCalls: true,
          toolCallId: true,
          attachments: IMAGE_REFS,
        },
      },
    },
  });
  if (!found) throw notFound('Conversation');
  const { messages, ...conversation } = found;
  return { conversation, history: messages.reverse().filter(carriesContent) };
}

/**
 * The branch that ends at `leafId` (included), root to leaf, as sent to a provider, with each
 * turn's image references, in one statement: the history of a reply that starts beside the
 * current branch (a regenerated reply, an edited question).
 */
export async function branchHistory(prisma: PrismaClient, leafId: string | null): Promise<HistoryTurnWithImages[]> {
  if (!leafId) return [];
  const turns = await prisma.$queryRaw<HistoryTurnWithImages[]>`
    WITH RECURSIVE "branch" AS (
      SELECT "id", "parentId", "role", "content", "toolCalls", "toolCallId", "status", 1 AS "depth" FROM "Message" WHERE "id" = ${leafId}::uuid
      UNION ALL
      SELECT m."id", m."parentId", m."role", m."content", m."toolCalls", m."toolCallId", m."status", b."depth" + 1
      FROM "Message" m JOIN "branch" b ON m."id" = b."parentId"
      WHERE b."depth" < ${HISTORY_LIMIT}
    )
    SELECT "id"::text AS "id", "role"::text AS "role", "content", "toolCalls", "toolCallId",
      (SELECT COALESCE(jsonb_agg(jsonb_build_object('id', a."id"::text, 'messageId', a."messageId"::text, 'url', a."url", 'mimeType', a."mimeType") ORDER BY a."position"), '[]'::jsonb)
       FROM "Attachment" a WHERE a."messageId" = "branch"."id") AS "attachments"
    FROM "branch"
    WHERE "status"::text IN (${Prisma.join([...SENT_STATUSES])}) AND "role" <> 'SYSTEM'
    ORDER BY "id"`;
  return turns.filter(carriesContent);
}

/** A message of the caller's, with what a new branch beside it needs. */
export async function findOwnMessage(prisma: PrismaClient, userId: string, messageId: string) {
  const message = await prisma.message.findFirst({
    where: { id: messageId, userId },
    include: { conversation: true, parent: { include: { attachments: IMAGE_REFS } } },
  });
  if (!message) throw notFound('Message');
  return message;
}

/**
 * Makes the branch through a message current, down to its newest leaf, under the conversation's
 * row lock (sends and other changes of branch wait for it): what Conversation.messages pages
 * through and what the next message continues.
 */
export async function selectBranch(
  prisma: PrismaClient,
  userId: string,
  messageId: string,
  /** What to read of the conversation (plugin-prisma's selection for the answer). */
  query: { select?: Prisma.ConversationSelect; include?: Prisma.ConversationInclude } = {},
): Promise<Conversation> {
  const message = await prisma.message.findFirst({ where: { id: messageId, userId }, select: { conversationId: true } });
  if (!message) throw notFound('Message');
  const [row] = await prisma.$queryRaw<[{ leaf: string | null }?]>`
    WITH "locked" AS (
      SELECT "id" FROM "Conversation" WHERE "id" = ${message.conversationId}::uuid AND "userId" = ${userId}::uuid FOR UPDATE
    )
    SELECT "chat_select_branch"("locked"."id", ${messageId}::uuid)::text AS "leaf" FROM "locked"`;
  if (!row?.leaf) throw notFound('Message');
  return prisma.conversation.findUniqueOrThrow({ ...query, where: { id: message.conversationId } });
}

/** A reply can be regenerated once it has ended, and only an assistant's. */
export function assertRegenerable(message: Pick<Message, 'role' | 'status'>): void {
  if (message.role !== 'ASSISTANT') throw badInput('Only an assistant reply can be regenerated', 'messageId');
  if (message.status === 'PENDING' || message.status === 'STREAMING') {
    throw badInput('This reply is still being generated: stop it first', 'messageId');
  }
}

/** Only what the user wrote can be edited. */
export function assertEditable(message: Pick<Message, 'role'>): void {
  if (message.role !== 'USER') throw badInput('Only a user message can be edited', 'messageId');
}

/** Where a message sits among its siblings: its conversation and its parent (null for a first message). */
export interface SiblingsKey {
  conversationId: string;
  parentId: string | null;
}

/**
 * The children of each given parent, oldest first, in one read for a whole list of messages
 * (a message's alternatives are its parent's children, itself included).
 */
export async function messageSiblings(prisma: PrismaClient, keys: readonly SiblingsKey[]): Promise<Message[][]> {
  const parents = [...new Set(keys.flatMap((k) => (k.parentId ? [k.parentId] : [])))];
  const roots = [...new Set(keys.flatMap((k) => (k.parentId ? [] : [k.conversationId])))];
  const messages = await prisma.message.findMany({
    where: {
      OR: [
        ...(parents.length > 0 ? [{ parentId: { in: parents } }] : []),
        ...(roots.length > 0 ? [{ conversationId: { in: roots }, parentId: null }] : []),
      ],
    },
    orderBy: { id: 'asc' },
  });
  const groupOf = (m: SiblingsKey) => m.parentId ?? `root:${m.conversationId}`;
  const groups = new Map<string, Message[]>();
  for (const message of messages) {
    const group = groups.get(groupOf(message));
    if (group) group.push(message);
    else groups.set(groupOf(message), [message]);
  }
  return keys.map((key) => groups.get(groupOf(key)) ?? []);
}
