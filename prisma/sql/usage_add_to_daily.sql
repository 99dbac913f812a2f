-- Adds usage to a user's roll-up of one day and model (usage: promptTokens, cachedTokens,
-- cacheWriteTokens, completionTokens, reasoningTokens; a missing cacheWriteTokens, from an instance
-- older than that count, adds none). A correction adds the difference, which may be negative.
CREATE OR REPLACE FUNCTION "usage_add_to_daily"(p_user uuid, p_day date, p_model text, p_usage jsonb, p_cost bigint, p_requests int)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO "UsageDaily" ("userId", "day", "model", "promptTokens", "cachedTokens", "cacheWriteTokens", "completionTokens",
    "reasoningTokens", "totalTokens", "costMicros", "requests")
  VALUES (p_user, p_day, p_model, (p_usage->>'promptTokens')::bigint, (p_usage->>'cachedTokens')::bigint,
    COALESCE((p_usage->>'cacheWriteTokens')::bigint, 0), (p_usage->>'completionTokens')::bigint,
    (p_usage->>'reasoningTokens')::bigint,
    (p_usage->>'promptTokens')::bigint + (p_usage->>'completionTokens')::bigint, p_cost, p_requests)
  ON CONFLICT ("userId", "day", "model") DO UPDATE SET
    "promptTokens" = "UsageDaily"."promptTokens" + EXCLUDED."promptTokens",
    "cachedTokens" = "UsageDaily"."cachedTokens" + EXCLUDED."cachedTokens",
    "cacheWriteTokens" = "UsageDaily"."cacheWriteTokens" + EXCLUDED."cacheWriteTokens",
    "completionTokens" = "UsageDaily"."completionTokens" + EXCLUDED."completionTokens",
    "reasoningTokens" = "UsageDaily"."reasoningTokens" + EXCLUDED."reasoningTokens",
    "totalTokens" = "UsageDaily"."totalTokens" + EXCLUDED."totalTokens",
    "costMicros" = "UsageDaily"."costMicros" + EXCLUDED."costMicros",
    "requests" = "UsageDaily"."requests" + EXCLUDED."requests";
$$;
