-- A call settled without its usage (its instance was presumed dead: settled by RECOVERY or SWEEP)
-- that later reports what it really used: the difference is charged, once, to the quota and the
-- credits (as metering_share divides them; a negative difference is given back), the key's spend
-- and the roll-up of the day it was settled. p as for metering_settle (price, usage, costMicros, model,
-- ledgerEntryId). Recovery and the sweep count a call under the model reserved (only the call
-- itself knows of a fallback): when p names another model, the call moves to it in the roll-up. Returns { corrected: false } when there is nothing to correct, { priceChanged: true }
-- when the price is not the reservation's (nothing written), else { corrected: true, model }.
CREATE OR REPLACE FUNCTION "metering_correct"(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_reservation "Reservation"%ROWTYPE;
  v_usage jsonb := p->'usage';
  v_charged jsonb;
  v_uncharged jsonb;
  v_delta_cost bigint;
  v_model text;
  v_before record;
  v_after record;
  v_delta_credits bigint;
  v_now timestamp := timezone('UTC', now());
BEGIN
  SELECT * INTO v_reservation FROM "Reservation"
    WHERE "id" = (p->>'reservationId')::uuid AND "settledAt" IS NOT NULL AND "settledBy" <> 'RUN'
      AND "correctedAt" IS NULL
    FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('corrected', false);
  END IF;
  IF v_reservation."price" <> p->'price' THEN
    RETURN jsonb_build_object('priceChanged', true);
  END IF;
  v_model := COALESCE(p->>'model', v_reservation."model");
  PERFORM 1 FROM "User" WHERE "id" = v_reservation."userId" FOR NO KEY UPDATE;

  v_charged := COALESCE(v_reservation."chargedUsage",
    '{"promptTokens": 0, "cachedTokens": 0, "completionTokens": 0, "reasoningTokens": 0}'::jsonb);
  -- What was charged, negated (a count it lacks, as in a settlement from before that count existed, was 0).
  SELECT jsonb_object_agg(key, -COALESCE((v_charged->>key)::bigint, 0)) INTO v_uncharged
    FROM unnest(ARRAY['promptTokens', 'cachedTokens', 'cacheWriteTokens', 'completionTokens', 'reasoningTokens']) AS key;
  v_delta_cost := (p->>'costMicros')::bigint - v_reservation."chargedMicros";
  v_before := "metering_share"(v_reservation, (v_charged->>'promptTokens')::bigint + (v_charged->>'completionTokens')::bigint,
    v_reservation."chargedMicros");
  v_after := "metering_share"(v_reservation, (v_usage->>'promptTokens')::bigint + (v_usage->>'completionTokens')::bigint,
    (p->>'costMicros')::bigint);
  v_delta_credits := v_after.credit_micros - v_before.credit_micros;

  UPDATE "Reservation" SET "correctedAt" = v_now, "chargedUsage" = v_usage, "chargedMicros" = (p->>'costMicros')::bigint
    WHERE "id" = v_reservation."id";
  IF v_reservation."quotaTokens" > 0 THEN
    UPDATE "QuotaPeriod"
      SET "usedTokens" = GREATEST("usedTokens" + v_after.quota_tokens - v_before.quota_tokens, 0),
          "updatedAt" = v_now
      WHERE "userId" = v_reservation."userId" AND "period" = v_reservation."period";
  END IF;
  PERFORM "metering_charge_key"(v_reservation, 0, v_delta_cost, v_now);
  IF v_delta_credits <> 0 THEN
    PERFORM "credit_ledger_append"(jsonb_build_object('id', p->>'ledgerEntryId', 'userId', v_reservation."userId",
      'kind', CASE WHEN v_delta_credits > 0 THEN 'USAGE' ELSE 'ADJUSTMENT' END, 'amountMicros', -v_delta_credits,
      'messageId', v_reservation."messageId",
      'reason', v_model || ': correction to the usage the provider reported'));
  END IF;
  -- What was charged taken off the model it was counted under, what was used added to the model that
  -- served the call: the difference on one row, unless a fallback served it.
  PERFORM "usage_add_to_daily"(v_reservation."userId", v_reservation."settledAt"::date, v_reservation."model", v_uncharged,
    -v_reservation."chargedMicros", -1);
  PERFORM "usage_add_to_daily"(v_reservation."userId", v_reservation."settledAt"::date, v_model, v_usage,
    (p->>'costMicros')::bigint, 1);
  RETURN jsonb_build_object('corrected', true, 'model', v_model);
END $$;
