-- Settling a call, and recording the end of a generation with its settlement, each in one
-- statement: the locks are held inside the database only, not across the round trips of an
-- interactive transaction. The rules are those of Metering.settle (src/metering/metering.ts);
-- the cost is computed there, from the reservation's price, which this checks.

-- Adds usage to a user's roll-up of one day and model (usage: promptTokens, cachedTokens,
-- completionTokens, reasoningTokens); also used by Metering.correct, through rollups.ts.
CREATE FUNCTION "usage_add_to_daily"(p_user uuid, p_day date, p_model text, p_usage jsonb, p_cost bigint, p_requests int)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO "UsageDaily" ("userId", "day", "model", "promptTokens", "cachedTokens", "completionTokens",
    "reasoningTokens", "totalTokens", "costMicros", "requests")
  VALUES (p_user, p_day, p_model, (p_usage->>'promptTokens')::bigint, (p_usage->>'cachedTokens')::bigint,
    (p_usage->>'completionTokens')::bigint, (p_usage->>'reasoningTokens')::bigint,
    (p_usage->>'promptTokens')::bigint + (p_usage->>'completionTokens')::bigint, p_cost, p_requests)
  ON CONFLICT ("userId", "day", "model") DO UPDATE SET
    "promptTokens" = "UsageDaily"."promptTokens" + EXCLUDED."promptTokens",
    "cachedTokens" = "UsageDaily"."cachedTokens" + EXCLUDED."cachedTokens",
    "completionTokens" = "UsageDaily"."completionTokens" + EXCLUDED."completionTokens",
    "reasoningTokens" = "UsageDaily"."reasoningTokens" + EXCLUDED."reasoningTokens",
    "totalTokens" = "UsageDaily"."totalTokens" + EXCLUDED."totalTokens",
    "costMicros" = "UsageDaily"."costMicros" + EXCLUDED."costMicros",
    "requests" = "UsageDaily"."requests" + EXCLUDED."requests";
$$;

-- Charges what a call used, exactly once. p: reservationId, price (the reservation's, as the
-- caller computed the cost with), usage { promptTokens, cachedTokens, completionTokens,
-- reasoningTokens }, costMicros, by (RUN, RECOVERY or SWEEP), day (UTC, for the roll-up),
-- ledgerEntryId. Returns { settled: false } when it was settled already, { priceChanged: true }
-- when the price is not the reservation's (nothing written), else { settled: true, model }.
CREATE FUNCTION "metering_settle"(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_reservation "Reservation"%ROWTYPE;
  v_usage jsonb := p->'usage';
  v_cost bigint := (p->>'costMicros')::bigint;
  v_prompt bigint := (v_usage->>'promptTokens')::bigint;
  v_completion bigint := (v_usage->>'completionTokens')::bigint;
  v_tokens bigint := v_prompt + v_completion;
  v_balance bigint;
BEGIN
  SELECT * INTO v_reservation FROM "Reservation"
    WHERE "id" = (p->>'reservationId')::uuid AND "settledAt" IS NULL FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('settled', false);
  END IF;
  IF v_reservation."price" <> p->'price' THEN
    RETURN jsonb_build_object('priceChanged', true);
  END IF;
  PERFORM 1 FROM "User" WHERE "id" = v_reservation."userId" FOR NO KEY UPDATE;

  UPDATE "Reservation" SET "settledAt" = now(), "settledBy" = p->>'by',
    "chargedUsage" = v_usage, "chargedMicros" = v_cost
    WHERE "id" = v_reservation."id";
  IF v_reservation."quotaTokens" > 0 THEN
    UPDATE "QuotaPeriod"
      SET "reservedTokens" = GREATEST("reservedTokens" - v_reservation."quotaTokens", 0),
          "usedTokens" = GREATEST("usedTokens" + v_tokens, 0), "updatedAt" = now()
      WHERE "userId" = v_reservation."userId" AND "period" = v_reservation."period";
  END IF;
  IF v_reservation."creditMicros" > 0 THEN
    UPDATE "User" SET "creditHeldMicros" = GREATEST("creditHeldMicros" - v_reservation."creditMicros", 0)
      WHERE "id" = v_reservation."userId";
  END IF;
  IF v_reservation."apiKeyId" IS NOT NULL THEN
    INSERT INTO "ApiKeySpend" ("apiKeyId", "period", "spentMicros", "heldMicros", "updatedAt")
    VALUES (v_reservation."apiKeyId", v_reservation."period", GREATEST(v_cost, 0), 0, now())
    ON CONFLICT ("apiKeyId", "period") DO UPDATE SET
      "heldMicros" = GREATEST("ApiKeySpend"."heldMicros" - v_reservation."keyMicros", 0),
      "spentMicros" = GREATEST("ApiKeySpend"."spentMicros" + v_cost, 0),
      "updatedAt" = now();
  END IF;
  IF v_reservation."paysWithCredits" AND v_cost > 0 THEN
    UPDATE "User" SET "creditBalanceMicros" = "creditBalanceMicros" - v_cost, "updatedAt" = now()
      WHERE "id" = v_reservation."userId"
      RETURNING "creditBalanceMicros" INTO v_balance;
    INSERT INTO "CreditLedgerEntry" ("id", "userId", "kind", "amountMicros", "balanceAfterMicros", "reason", "messageId")
    VALUES ((p->>'ledgerEntryId')::uuid, v_reservation."userId", 'USAGE', -v_cost, v_balance,
      v_reservation."model" || ': ' || v_tokens || ' tokens', v_reservation."messageId");
  END IF;
  PERFORM "usage_add_to_daily"(v_reservation."userId", (p->>'day')::date, v_reservation."model", v_usage, v_cost, 1);
  RETURN jsonb_build_object('settled', true, 'model', v_reservation."model");
END $$;

-- The end of a generation: its reservation settled (metering_settle's p in p->'settle') and, if
-- that settled it, its message written with the usage and cost while still running, and its
-- conversation touched. p->'message': id, conversationId, status, content, usageEstimated,
-- finishReason, errorCode, errorMessage, now. Returns metering_settle's answer.
CREATE FUNCTION "generation_record_final"(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
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
