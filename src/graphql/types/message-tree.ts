import { builder } from '../builder.js';
import { requireViewer } from '../context.js';
import { ConversationRef } from './conversation.js';
import { MessageRef, SendMessagePayload } from './message.js';

builder.prismaObjectFields(MessageRef, (t) => ({
  parent: t.relation('parent', { nullable: true, description: 'The message this one follows; null for the first.' }),
  alternatives: t.prismaField({
    type: ['Message'],
    description:
      'Every message with the same parent, itself included, oldest first: the replies regenerated beside it, or the edits of a question. selectBranch makes one current.',
    select: { conversationId: true, parentId: true },
    resolve: (_query, message, _args, ctx) => ctx.loaders.messageSiblings.load({ conversationId: message.conversationId, parentId: message.parentId }),
  }),
}));

const RegenerateMessageInput = builder.inputType('RegenerateMessageInput', {
  fields: (t) => ({
    messageId: t.globalID({ required: true, for: MessageRef, description: 'The reply to generate again (it stays, as an alternative).' }),
    model: t.string({ description: "Defaults to the conversation's model." }),
    stream: t.boolean({ defaultValue: true, description: 'true: return at once and follow messageStream; false: return the complete reply.' }),
  }),
});

const EditMessageInput = builder.inputType('EditMessageInput', {
  fields: (t) => ({
    messageId: t.globalID({ required: true, for: MessageRef, description: 'The user message to edit (it stays, as an alternative).' }),
    content: t.string({ required: true }),
    stream: t.boolean({ defaultValue: true, description: 'true: return at once and follow messageStream; false: return the complete reply.' }),
  }),
});

builder.mutationFields((t) => ({
  regenerateMessage: t.field({
    type: SendMessagePayload,
    description:
      'A new reply to the same question, beside the one given (a sibling, kept as an alternative), on a branch that becomes current. userMessage is the question it answers.',
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: RegenerateMessageInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.chat.regenerateMessage(requireViewer(ctx).id, { ...input, messageId: input.messageId.id }, ctx.viewer?.apiKeyId),
  }),
  editMessage: t.field({
    type: SendMessagePayload,
    description: 'A new user message beside the one given (same parent) and its reply: a new branch, now current. The history before it is kept.',
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: EditMessageInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.chat.editMessage(requireViewer(ctx).id, { ...input, messageId: input.messageId.id }, ctx.viewer?.apiKeyId),
  }),
  selectBranch: t.prismaField({
    type: ConversationRef,
    description: "Makes the branch through this message current, down to its newest message: what Conversation.messages shows and the next message continues.",
    authScopes: { authenticated: true },
    args: { messageId: t.arg.globalID({ required: true, for: MessageRef }) },
    resolve: (query, _root, { messageId }, ctx) => ctx.services.chat.selectBranch(requireViewer(ctx).id, messageId.id, query),
  }),
}));
