-- Writes what metering_decide decided: the holds and the reservation row.
-- p as for metering_decide, plus reservationId, messageId, kind, model, price, promptEstimate,
-- leaseExpiresAt (UTC).
CREATE OR REPLACE FUNCTION "metering_hold"(p jsonb, d jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_period date := (p->>'period')::date;
  v_credit_micros bigint := (d->>'creditMicros')::bigint;
  v_key_micros bigint := (d->>'keyMicros')::bigint;
  v_now timestamp := timezone('UTC', now());
BEGIN
  INSERT INTO "QuotaPeriod" ("userId", "period", "usedTokens", "reservedTokens", "updatedAt")
  VALUES ((p->>'userId')::uuid, v_period, 0, (d->>'quotaTokens')::bigint, v_now)
  ON CONFLICT ("userId", "period") DO UPDATE
    SET "reservedTokens" = "QuotaPeriod"."reservedTokens" + EXCLUDED."reservedTokens", "updatedAt" = v_now;
  IF v_credit_micros > 0 THEN
    UPDATE "User" SET "creditHeldMicros" = "creditHeldMicros" + v_credit_micros WHERE "id" = (p->>'userId')::uuid;
  END IF;
  IF p->>'apiKeyId' IS NOT NULL THEN
    INSERT INTO "ApiKeySpend" ("apiKeyId", "period", "spentMicros", "heldMicros", "updatedAt")
    VALUES ((p->>'apiKeyId')::uuid, v_period, 0, v_key_micros, v_now)
    ON CONFLICT ("apiKeyId", "period") DO UPDATE
      SET "heldMicros" = "ApiKeySpend"."heldMicros" + EXCLUDED."heldMicros", "updatedAt" = v_now;
  END IF;
  INSERT INTO "Reservation" ("id", "userId", "messageId", "apiKeyId", "keyMicros", "kind", "model", "period",
    "quotaTokens", "creditMicros", "paysWithCredits", "creditsPastQuota", "promptEstimate", "price", "leaseExpiresAt", "createdAt")
  VALUES ((p->>'reservationId')::uuid, (p->>'userId')::uuid, (p->>'messageId')::uuid, (p->>'apiKeyId')::uuid,
    v_key_micros, p->>'kind', p->>'model', v_period, (d->>'quotaTokens')::int, v_credit_micros,
    v_credit_micros > 0, COALESCE((d->>'creditsPastQuota')::boolean, false), (p->>'promptEstimate')::int, p->'price', (p->>'leaseExpiresAt')::timestamp, v_now);
END $$;
