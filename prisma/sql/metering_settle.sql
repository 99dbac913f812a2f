CREATE OR REPLACE FUNCTION "metering_settle"(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
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
