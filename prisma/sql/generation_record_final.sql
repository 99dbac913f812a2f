CREATE OR REPLACE FUNCTION "generation_record_final"(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_settlement jsonb := "metering_settle"(p->'settle');
  v_message jsonb := p->'message';
  v_usage jsonb := p->'settle'->'usage';
  v_now timestamp := (v_message->>'now')::timestamp;
BEGIN
  IF NOT (v_settlement->>'settled')::boolean IS TRUE THEN
    RETURN v_settlement;
  END IF;
  UPDATE "Message" SET
    "status" = (v_message->>'status')::"MessageStatus",
    "content" = v_message->>'content',
    "promptTokens" = (v_usage->>'promptTokens')::int,
    "cachedTokens" = (v_usage->>'cachedTokens')::int,
    "completionTokens" = (v_usage->>'completionTokens')::int,
    "reasoningTokens" = (v_usage->>'reasoningTokens')::int,
    "totalTokens" = (v_usage->>'promptTokens')::int + (v_usage->>'completionTokens')::int,
    "costMicros" = (p->'settle'->>'costMicros')::bigint,
    "usageEstimated" = (v_message->>'usageEstimated')::boolean,
    "finishReason" = v_message->>'finishReason',
    "errorCode" = v_message->>'errorCode',
    "errorMessage" = v_message->>'errorMessage',
    "completedAt" = v_now,
    "updatedAt" = v_now
    WHERE "id" = (v_message->>'id')::uuid AND "status" IN ('PENDING', 'STREAMING');
  -- The message may be gone (its conversation deleted): then only the reservation is settled.
  IF FOUND THEN
    UPDATE "Conversation" SET "updatedAt" = v_now WHERE "id" = (v_message->>'conversationId')::uuid;
  END IF;
  RETURN v_settlement;
END $$;
