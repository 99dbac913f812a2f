-- sendMessage's writes: the reservation, the cap on replies running at once (counted under the
-- user's row lock, so concurrent sends cannot overshoot it), the conversation (created, or
-- touched and perhaps retitled) and the two messages.
-- p: reservation (metering_decide's p, with the hold's fields), maxRunning, now (UTC), conversation
-- { id, existing, title, model, systemPrompt }, userMessage { id, content, attachments? }, assistantMessage { id, model }.
-- userMessage.attachments: the message's images in order, each { id, url } or { id, mimeType, bytes, data (base64) }.
CREATE OR REPLACE FUNCTION "chat_send_message"(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_reservation jsonb := p->'reservation';
  v_user_id uuid := (v_reservation->>'userId')::uuid;
  v_conversation jsonb := p->'conversation';
  v_conversation_id uuid := (v_conversation->>'id')::uuid;
  v_now timestamp := (p->>'now')::timestamp;
  v_decision jsonb := "metering_decide"(v_reservation);
  v_running bigint;
BEGIN
  IF v_decision ? 'refused' THEN
    RETURN v_decision;
  END IF;
  SELECT count(*) INTO v_running FROM "Message"
    WHERE "userId" = v_user_id AND "role" = 'ASSISTANT' AND "status" IN ('PENDING', 'STREAMING');
  IF v_running >= (p->>'maxRunning')::int THEN
    RETURN jsonb_build_object('refused', 'TOO_MANY_RUNNING');
  END IF;
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
  PERFORM "metering_hold"(v_reservation, v_decision);
  INSERT INTO "Message" ("id", "conversationId", "userId", "role", "content", "status", "createdAt", "updatedAt")
  VALUES ((p->'userMessage'->>'id')::uuid, v_conversation_id, v_user_id, 'USER', p->'userMessage'->>'content',
    'COMPLETE', v_now, v_now);
  INSERT INTO "Attachment" ("id", "messageId", "userId", "position", "url", "mimeType", "bytes", "data", "createdAt")
  SELECT (a.value->>'id')::uuid, (p->'userMessage'->>'id')::uuid, v_user_id, (a.position - 1)::int, a.value->>'url',
    a.value->>'mimeType', (a.value->>'bytes')::int, decode(a.value->>'data', 'base64'), v_now
  FROM jsonb_array_elements(COALESCE(p->'userMessage'->'attachments', '[]'::jsonb)) WITH ORDINALITY AS a(value, position);
  INSERT INTO "Message" ("id", "conversationId", "userId", "role", "content", "status", "model", "createdAt", "updatedAt")
  VALUES ((p->'assistantMessage'->>'id')::uuid, v_conversation_id, v_user_id, 'ASSISTANT', '', 'STREAMING',
    p->'assistantMessage'->>'model', v_now, v_now);
  RETURN v_decision;
END $$;
-- Settling a call, and recording the end of a generation with its settlement, each in one
-- statement: the locks are held inside the database only, not across the round trips of an
-- interactive transaction. The rules are those of Metering.settle (src/metering/metering.ts);
-- the cost is computed there, from the reservation's price, which this checks.
