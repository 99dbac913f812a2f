-- The writes that start a reply (sendMessage, editMessage, regenerateMessage, submitToolResults): the reservation,
-- the cap on replies running at once (counted under the user's row lock, so concurrent sends
-- cannot overshoot it), the conversation (created, or touched and perhaps retitled), the new
-- prompt messages and the reply, each following the one before it in the message tree.
-- p: reservation (metering_decide's p, with the hold's fields), maxRunning, now (UTC), conversation
-- { id, existing, title, model, systemPrompt }, parentId (optional: the message the new ones
-- follow; absent: the leaf of the current branch, which they continue), messages [{ id, role,
-- content, toolCallId?, attachments? }] (the prompt messages before the reply: the user's, or TOOL
-- messages with a reply's tool results; none when a reply is regenerated), assistantMessage { id,
-- model, tools?, toolChoice?, generationOptions? } (the tools it is offered, how it was asked for), and for tool results answersToolCalls: true
-- (parentId is then the reply that asked for them, which must have no child yet: checked under the
-- user's and the conversation's locks, so of two submissions for one reply the second is refused).
-- A message's attachments: its images in order, each { id, url } or { id, mimeType, bytes, data (base64) }.
-- Returns metering_decide's answer, with the parentId of the first new message.
CREATE OR REPLACE FUNCTION "chat_send_message"(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_reservation jsonb := p->'reservation';
  v_user_id uuid := (v_reservation->>'userId')::uuid;
  v_conversation jsonb := p->'conversation';
  v_conversation_id uuid := (v_conversation->>'id')::uuid;
  v_now timestamp := (p->>'now')::timestamp;
  v_decision jsonb := "metering_decide"(v_reservation);
  v_running bigint;
  v_first_parent uuid;
  v_parent uuid;
  v_message jsonb;
BEGIN
  IF v_decision ? 'refused' THEN
    RETURN v_decision;
  END IF;
  SELECT count(*) INTO v_running FROM "Message"
    WHERE "userId" = v_user_id AND "role" = 'ASSISTANT' AND "status" IN ('PENDING', 'STREAMING');
  IF v_running >= (p->>'maxRunning')::int THEN
    RETURN jsonb_build_object('refused', 'TOO_MANY_RUNNING');
  END IF;
  -- The conversation's row lock, taken here, orders the sends and changes of branch of one conversation.
  IF (v_conversation->>'existing')::boolean THEN
    UPDATE "Conversation" SET "title" = COALESCE(v_conversation->>'title', "title"), "updatedAt" = v_now
      WHERE "id" = v_conversation_id AND "userId" = v_user_id;
    IF NOT FOUND THEN
      RETURN jsonb_build_object('refused', 'NO_CONVERSATION');
    END IF;
  ELSE
    INSERT INTO "Conversation" ("id", "userId", "title", "model", "systemPrompt", "createdAt", "updatedAt")
    VALUES (v_conversation_id, v_user_id, v_conversation->>'title', v_conversation->>'model',
      v_conversation->>'systemPrompt', v_now, v_now);
  END IF;
  IF p ? 'parentId' THEN
    v_first_parent := (p->>'parentId')::uuid;
    IF v_first_parent IS NOT NULL AND NOT EXISTS (
      SELECT 1 FROM "Message" WHERE "id" = v_first_parent AND "conversationId" = v_conversation_id
    ) THEN
      RETURN jsonb_build_object('refused', 'NO_PARENT');
    END IF;
    IF (p->>'answersToolCalls')::boolean AND EXISTS (SELECT 1 FROM "Message" WHERE "parentId" = v_first_parent) THEN
      RETURN jsonb_build_object('refused', 'TOOL_CALLS_ANSWERED');
    END IF;
  ELSE
    SELECT "id" INTO v_first_parent FROM "Message"
      WHERE "conversationId" = v_conversation_id AND "onCurrentBranch" ORDER BY "id" DESC LIMIT 1;
  END IF;
  PERFORM "metering_hold"(v_reservation, v_decision);
  v_parent := v_first_parent;
  FOR v_message IN SELECT * FROM jsonb_array_elements(COALESCE(p->'messages', '[]'::jsonb)) LOOP
    INSERT INTO "Message" ("id", "conversationId", "userId", "role", "content", "toolCallId", "status", "parentId", "createdAt", "updatedAt")
    VALUES ((v_message->>'id')::uuid, v_conversation_id, v_user_id, (v_message->>'role')::"MessageRole",
      v_message->>'content', v_message->>'toolCallId', 'COMPLETE', v_parent, v_now, v_now);
    INSERT INTO "Attachment" ("id", "messageId", "userId", "position", "url", "mimeType", "bytes", "data", "createdAt")
    SELECT (a.value->>'id')::uuid, (v_message->>'id')::uuid, v_user_id, (a.position - 1)::int, a.value->>'url',
      a.value->>'mimeType', (a.value->>'bytes')::int, decode(a.value->>'data', 'base64'), v_now
    FROM jsonb_array_elements(COALESCE(v_message->'attachments', '[]'::jsonb)) WITH ORDINALITY AS a(value, position);
    v_parent := (v_message->>'id')::uuid;
  END LOOP;
  INSERT INTO "Message" ("id", "conversationId", "userId", "role", "content", "status", "model", "tools", "toolChoice",
    "generationOptions", "parentId", "createdAt", "updatedAt")
  VALUES ((p->'assistantMessage'->>'id')::uuid, v_conversation_id, v_user_id, 'ASSISTANT', '', 'STREAMING',
    p->'assistantMessage'->>'model', p->'assistantMessage'->'tools', p->'assistantMessage'->>'toolChoice',
    p->'assistantMessage'->'generationOptions', v_parent, v_now, v_now);
  -- A reply beside an earlier one (regenerated, or after an edited question) starts a branch: it becomes the current one.
  IF p ? 'parentId' THEN
    PERFORM "chat_select_branch"(v_conversation_id, (p->'assistantMessage'->>'id')::uuid);
  END IF;
  RETURN v_decision || jsonb_build_object('parentId', v_first_parent);
END $$;
