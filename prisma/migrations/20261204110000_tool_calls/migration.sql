-- Function calling: TOOL messages (a tool's result, answering one call), the calls a reply asked
-- for, and the tools it was offered, which the reply after the results is offered again
-- (prisma/sql/chat_send_message.sql and generation_record_final.sql write them).
ALTER TYPE "MessageRole" ADD VALUE 'TOOL';

ALTER TABLE "Message" ADD COLUMN "toolCalls" JSONB,
  ADD COLUMN "toolCallId" TEXT,
  ADD COLUMN "tools" JSONB,
  ADD COLUMN "toolChoice" TEXT;
