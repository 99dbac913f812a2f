-- Charges what a call used, exactly once: the quota the tokens billed and the credits the cost, as
-- metering_share divides them, the key's spend the cost, the roll-up of the day (UTC) both. A released call
-- (the upstream refused it before doing any work) has its holds released, is charged nothing and
-- counts no request. p: reservationId, price (the reservation's, as the caller computed the cost
-- with), usage { promptTokens, cachedTokens, cacheWriteTokens, completionTokens, reasoningTokens },
-- costMicros, by (RUN, RECOVERY or SWEEP), released (optional), model (optional: the catalog model
-- that served the call when it is not the one reserved, a fallback; the roll-up and the ledger
-- count the call under it), ledgerEntryId. Returns { settled: false } when it was settled
-- already, { priceChanged: true } when the price is not the reservation's (nothing written), else
-- { settled: true, model } (the model the call is counted under).
CREATE OR REPLACE FUNCTION "metering_settle"(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_reservation "Reservation"%ROWTYPE;
  v_released boolean := COALESCE((p->>'released')::boolean, false);
  v_usage jsonb := p->'usage';
  v_cost bigint := (p->>'costMicros')::bigint;
  v_tokens bigint := (v_usage->>'promptTokens')::bigint + (v_usage->>'completionTokens')::bigint;
  v_now timestamp := timezone('UTC', now());
  v_model text;
  v_share record;
BEGIN
  SELECT * INTO v_reservation FROM "Reservation"
    WHERE "id" = (p->>'reservationId')::uuid AND "settledAt" IS NULL FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('settled', false);
  END IF;
  IF NOT v_released AND v_reservation."price" <> p->'price' THEN
    RETURN jsonb_build_object('priceChanged', true);
  END IF;
  IF v_released THEN
    v_usage := jsonb_build_object('promptTokens', 0, 'cachedTokens', 0, 'cacheWriteTokens', 0, 'completionTokens', 0,
      'reasoningTokens', 0);
    v_cost := 0;
    v_tokens := 0;
  END IF;
  v_model := COALESCE(p->>'model', v_reservation."model");
  PERFORM 1 FROM "User" WHERE "id" = v_reservation."userId" FOR NO KEY UPDATE;
  v_share := "metering_share"(v_reservation, v_tokens, v_cost);

  UPDATE "Reservation" SET "settledAt" = v_now, "settledBy" = p->>'by',
    "chargedUsage" = v_usage, "chargedMicros" = v_cost
    WHERE "id" = v_reservation."id";
  IF v_reservation."quotaTokens" > 0 THEN
    UPDATE "QuotaPeriod"
      SET "reservedTokens" = GREATEST("reservedTokens" - v_reservation."quotaTokens", 0),
          "usedTokens" = GREATEST("usedTokens" + v_share.quota_tokens, 0), "updatedAt" = v_now
      WHERE "userId" = v_reservation."userId" AND "period" = v_reservation."period";
  END IF;
  IF v_reservation."creditMicros" > 0 THEN
    UPDATE "User" SET "creditHeldMicros" = GREATEST("creditHeldMicros" - v_reservation."creditMicros", 0)
      WHERE "id" = v_reservation."userId";
  END IF;
  PERFORM "metering_charge_key"(v_reservation, v_reservation."keyMicros", v_cost, v_now);
  IF v_share.credit_micros > 0 THEN
    PERFORM "credit_ledger_append"(jsonb_build_object('id', p->>'ledgerEntryId', 'userId', v_reservation."userId",
      'kind', 'USAGE', 'amountMicros', -v_share.credit_micros, 'messageId', v_reservation."messageId",
      'reason', v_model || ': ' || v_tokens || ' tokens'
        || CASE WHEN v_reservation."creditsPastQuota" THEN ', ' || (v_tokens - v_share.quota_tokens) || ' past the quota' ELSE '' END));
  END IF;
  IF NOT v_released THEN
    PERFORM "usage_add_to_daily"(v_reservation."userId", v_now::date, v_model, v_usage, v_cost, 1);
  END IF;
  RETURN jsonb_build_object('settled', true, 'model', v_model);
END $$;
