import { archiveConversation, conversationFilter, createConversation, updateConversation } from '../../chat/conversations.js';
import { builder } from '../builder.js';
import { MAX_PAGE_SIZE } from '../limits/field-cost.js';
import { ownedByViewer } from '../ownership.js';
import { READ, readGuarded } from '../read-scopes.js';
import { requireViewer } from '../context.js';
import { encodeGlobalId } from '../../global-id.js';
import { UsageTotalsRef } from './usage.js';
import { UserRef } from './user.js';

export const ConversationRef = builder.prismaNode('Conversation', {
  ...ownedByViewer(READ),
  fields: (t) => ({
    title: t.exposeString('title'),
    model: t.exposeString('model'),
    systemPrompt: t.exposeString('systemPrompt', { nullable: true }),
    archived: t.exposeBoolean('archived'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    messageCount: t.relationCount('messages', {
      description: 'Messages on the current branch.',
      where: { onCurrentBranch: true },
    }),
    messages: t.relatedConnection(
      'messages',
      {
        cursor: 'id',
        description:
          'The current branch, root to leaf (see selectBranch; Message.alternatives lists the other branches); `last: n` gives the latest n. Null for an API key without READ.',
        nullable: true,
        maxSize: MAX_PAGE_SIZE,
        totalCount: true,
        query: () => ({ where: { onCurrentBranch: true }, orderBy: { id: 'asc' } }),
      },
      readGuarded,
    ),
    usage: t.field({
      type: UsageTotalsRef,
      nullable: true,
      description: 'Tokens and cost of the replies in this conversation. Null for an API key without READ.',
      resolve: (conversation, _args, ctx) => ctx.loaders.conversationUsage.load(conversation.id),
    }),
  }),
});

builder.prismaObjectField(UserRef, 'conversations', (t) =>
  t.relatedConnection(
    'conversations',
    {
      cursor: 'id',
      description: 'Newest first; archived ones only with `archived: true`. Null for an API key without READ.',
      nullable: true,
      authScopes: (user, _args, ctx) => user.id === ctx.viewer?.id,
      maxSize: MAX_PAGE_SIZE,
      totalCount: true,
      args: {
        search: t.arg.string({ description: 'Only conversations whose title or any message contains this text, in any case (at most 200 characters).' }),
        archived: t.arg.boolean({ defaultValue: false, description: 'true: the archived conversations instead.' }),
      },
      query: (args) => ({ where: conversationFilter(args), orderBy: { id: 'desc' } }),
    },
    readGuarded,
  ),
);

builder.queryField('conversation', (t) =>
  t.prismaField({
    type: 'Conversation',
    nullable: true,
    args: { id: t.arg.globalID({ required: true, for: ConversationRef }) },
    resolve: (query, _root, { id }, ctx) =>
      ctx.viewer ? ctx.services.prisma.conversation.findFirst({ ...query, where: { id: id.id, userId: ctx.viewer.id } }) : null,
  }),
);

const CreateConversationInput = builder.inputType('CreateConversationInput', {
  fields: (t) => ({
    title: t.string({ description: 'Generated from the first message when omitted.' }),
    model: t.string({ description: 'Defaults to the server default model.' }),
    systemPrompt: t.string(),
  }),
});

const UpdateConversationInput = builder.inputType('UpdateConversationInput', {
  fields: (t) => ({
    id: t.globalID({ required: true, for: ConversationRef }),
    title: t.string(),
    model: t.string(),
    systemPrompt: t.string({ description: 'An empty string removes it.' }),
  }),
});

builder.mutationFields((t) => ({
  createConversation: t.prismaField({
    type: 'Conversation',
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: CreateConversationInput, required: true }) },
    resolve: async (_query, _root, { input }, ctx) =>
      createConversation(ctx.services.chat.conversationDeps, requireViewer(ctx).id, input),
  }),
  updateConversation: t.prismaField({
    type: 'Conversation',
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: UpdateConversationInput, required: true }) },
    resolve: async (_query, _root, { input }, ctx) =>
      updateConversation(ctx.services.chat.conversationDeps, requireViewer(ctx).id, input.id.id, input),
  }),
  archiveConversation: t.prismaField({
    type: 'Conversation',
    description: 'Archives the conversation (it leaves the default list) or, with archived: false, brings it back.',
    authScopes: { authenticated: true },
    args: { id: t.arg.globalID({ required: true, for: ConversationRef }), archived: t.arg.boolean({ required: true }) },
    resolve: (_query, _root, { id, archived }, ctx) => archiveConversation(ctx.services.prisma, requireViewer(ctx).id, id.id, archived),
  }),
  deleteConversation: t.field({
    type: 'ID',
    description: 'Deletes the conversation and its messages (stopping any running reply); returns its id.',
    authScopes: { authenticated: true },
    args: { id: t.arg.globalID({ required: true, for: ConversationRef }) },
    resolve: async (_root, { id }, ctx) => {
      await ctx.services.chat.deleteConversation(requireViewer(ctx).id, id.id);
      return encodeGlobalId('Conversation', id.id);
    },
  }),
}));
