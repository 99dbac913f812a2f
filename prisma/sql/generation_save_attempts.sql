-- Records a reply's upstream calls, in the statement that records its end (generation_record_final):
-- one round trip for both. p_attempts: a JSON array of { id, userId, position, provider, model,
-- upstreamModel, outcome, httpStatus, errorCode, continued, promptTokens, cachedTokens,
-- cacheWriteTokens, completionTokens, reasoningTokens, usageEstimated, costMicros, billed, startedAt,
-- firstTokenMs, durationMs }. Idempotent: a retried record adds nothing. The message is held (KEY SHARE)
-- while they are written; when it is gone (its conversation deleted) they are kept without it.
CREATE OR REPLACE FUNCTION "generation_save_attempts"(p_message_id uuid, p_attempts jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_message_id uuid;
BEGIN
  IF p_attempts IS NULL OR jsonb_array_length(p_attempts) = 0 THEN
    RETURN;
  END IF;
  SELECT "id" INTO v_message_id FROM "Message" WHERE "id" = p_message_id FOR KEY SHARE;
  INSERT INTO "MessageAttempt" ("id", "messageId", "userId", "position", "provider", "model", "upstreamModel", "outcome",
    "httpStatus", "errorCode", "continued", "promptTokens", "cachedTokens", "cacheWriteTokens", "completionTokens",
    "reasoningTokens", "usageEstimated", "costMicros", "billed", "startedAt", "firstTokenMs", "durationMs")
  SELECT a."id", v_message_id, a."userId", a."position", a."provider", a."model", a."upstreamModel",
    a."outcome"::"AttemptOutcome", a."httpStatus", a."errorCode", a."continued", a."promptTokens", a."cachedTokens",
    a."cacheWriteTokens", a."completionTokens", a."reasoningTokens", a."usageEstimated", a."costMicros", a."billed",
    a."startedAt", a."firstTokenMs", a."durationMs"
  FROM jsonb_to_recordset(p_attempts) AS a("id" uuid, "userId" uuid, "position" int, "provider" text, "model" text,
    "upstreamModel" text, "outcome" text, "httpStatus" int, "errorCode" text, "continued" boolean, "promptTokens" int,
    "cachedTokens" int, "cacheWriteTokens" int, "completionTokens" int, "reasoningTokens" int, "usageEstimated" boolean,
    "costMicros" bigint, "billed" boolean, "startedAt" timestamp, "firstTokenMs" int, "durationMs" int)
  ON CONFLICT ("messageId", "position") DO NOTHING;
END $$;
