-- Messages form a tree: regenerating a reply or editing a question adds a sibling instead of
-- replacing it. Each message points to the one it follows; the conversation's current branch
-- (root to leaf) is flagged on its messages, so that paging it and reading the history it
-- continues stay plain indexed reads (prisma/sql/chat_select_branch.sql keeps the flags).
ALTER TABLE "Message" ADD COLUMN "parentId" UUID;
ALTER TABLE "Message" ADD COLUMN "onCurrentBranch" BOOLEAN NOT NULL DEFAULT true;

-- Until now a conversation was one line: each message follows the one before it.
UPDATE "Message" AS m SET "parentId" = line."previous"
FROM (SELECT "id", lag("id") OVER (PARTITION BY "conversationId" ORDER BY "id") AS "previous" FROM "Message") AS line
WHERE m."id" = line."id" AND line."previous" IS NOT NULL;

ALTER TABLE "Message" ADD CONSTRAINT "Message_parentId_fkey"
  FOREIGN KEY ("parentId") REFERENCES "Message"("id") ON DELETE CASCADE ON UPDATE CASCADE;
CREATE INDEX "Message_parentId_idx" ON "Message"("parentId");
CREATE INDEX "Message_conversationId_onCurrentBranch_id_idx" ON "Message"("conversationId", "onCurrentBranch", "id");
