-- The end of a generation, in one statement: its reservation settled (metering_settle's p in
-- p->'settle') and, if that settled it, its message written with the usage and cost while still
-- running, and its conversation touched. When a recovery settled it first (its instance was
-- presumed dead) and the generation itself reports (p->'settle'->>'by' = 'RUN'), the charge is
-- corrected to the real usage and the message rewritten whatever its status, once.
-- p->'message': id, conversationId, status, content, toolCalls (a JSON array, or null), usageEstimated, finishReason, errorCode,
-- errorMessage, and the catalog model and provider that finished the reply (both optional). p->'attempts': the reply's
-- upstream calls (generation_save_attempts), written whenever the generation itself reports, whether or not it settles.
-- Returns metering_settle's answer, or metering_correct's. A usage without
-- cacheWriteTokens (from an instance older than that count, during a rolling deploy) wrote none.
-- Locks in the order every writer keeps (src/db/user-lock.ts): reservation and user (settling),
-- then the conversation, then the message.
CREATE OR REPLACE FUNCTION "generation_record_final"(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_answer jsonb := "metering_settle"(p->'settle');
  v_message jsonb := p->'message';
  v_usage jsonb := p->'settle'->'usage';
  v_now timestamp := timezone('UTC', now());
  v_running_only boolean := true;
  -- False when the generation reports after a recovery closed it and nothing is left to correct.
  v_write_message boolean := true;
BEGIN
  IF v_answer ? 'priceChanged' THEN
    RETURN v_answer;
  END IF;
  IF NOT (v_answer->>'settled')::boolean THEN
    IF p->'settle'->>'by' <> 'RUN' THEN
      RETURN v_answer;
    END IF;
    v_answer := "metering_correct"(p->'settle');
    v_write_message := COALESCE((v_answer->>'corrected')::boolean, false);
    v_running_only := false;
  END IF;
  IF v_write_message THEN
    -- The conversation may be gone with its messages (deleted): then only the reservation is settled.
    PERFORM 1 FROM "Conversation" WHERE "id" = (v_message->>'conversationId')::uuid FOR NO KEY UPDATE;
    IF FOUND THEN
      UPDATE "Message" SET
        "status" = (v_message->>'status')::"MessageStatus",
        "content" = v_message->>'content',
        "toolCalls" = NULLIF(v_message->'toolCalls', 'null'::jsonb),
        "promptTokens" = (v_usage->>'promptTokens')::int,
        "cachedTokens" = (v_usage->>'cachedTokens')::int,
        "cacheWriteTokens" = COALESCE((v_usage->>'cacheWriteTokens')::int, 0),
        "completionTokens" = (v_usage->>'completionTokens')::int,
        "reasoningTokens" = (v_usage->>'reasoningTokens')::int,
        "totalTokens" = (v_usage->>'promptTokens')::int + (v_usage->>'completionTokens')::int,
        "costMicros" = (p->'settle'->>'costMicros')::bigint,
        "usageEstimated" = (v_message->>'usageEstimated')::boolean,
        "finishReason" = v_message->>'finishReason',
        "errorCode" = v_message->>'errorCode',
        "errorMessage" = v_message->>'errorMessage',
        "model" = COALESCE(v_message->>'model', "model"),
        "provider" = COALESCE(v_message->>'provider', "provider"),
        "completedAt" = v_now,
        "updatedAt" = v_now
        WHERE "id" = (v_message->>'id')::uuid AND (NOT v_running_only OR "status" IN ('PENDING', 'STREAMING'));
      IF FOUND THEN
        UPDATE "Conversation" SET "updatedAt" = v_now WHERE "id" = (v_message->>'conversationId')::uuid;
      END IF;
    END IF;
  END IF;
  PERFORM "generation_save_attempts"((v_message->>'id')::uuid, p->'attempts');
  RETURN v_answer;
END $$;
