-- Makes the branch through a message current: from the root, through the message, down to the
-- newest leaf below it (ids are time-ordered and a child is always newer than its parent, so the
-- newest message of the subtree is a leaf). The branch's messages are flagged onCurrentBranch,
-- every other message of the conversation is not. Returns the leaf, or null when the message is
-- not in the conversation. The caller holds the conversation's row lock, so that two changes of
-- branch (or a send and a change) cannot interleave.
CREATE OR REPLACE FUNCTION "chat_select_branch"(p_conversation_id uuid, p_message_id uuid) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
  v_leaf uuid;
BEGIN
  WITH RECURSIVE "below" AS (
    SELECT "id" FROM "Message" WHERE "id" = p_message_id AND "conversationId" = p_conversation_id
    UNION ALL
    SELECT m."id" FROM "Message" m JOIN "below" b ON m."parentId" = b."id"
  )
  SELECT "id" INTO v_leaf FROM "below" ORDER BY "id" DESC LIMIT 1;
  IF v_leaf IS NULL THEN
    RETURN NULL;
  END IF;
  WITH RECURSIVE "branch" AS (
    SELECT "id", "parentId" FROM "Message" WHERE "id" = v_leaf
    UNION ALL
    SELECT m."id", m."parentId" FROM "Message" m JOIN "branch" b ON m."id" = b."parentId"
  )
  UPDATE "Message" SET "onCurrentBranch" = ("id" IN (SELECT "id" FROM "branch"))
  WHERE "conversationId" = p_conversation_id
    AND "onCurrentBranch" IS DISTINCT FROM ("id" IN (SELECT "id" FROM "branch"));
  RETURN v_leaf;
END $$;
