-- Releases what a call held against its API key and adds what it cost (a correction may add a
-- negative amount) to the key's spend of the reservation's month. Nothing for a call without a key.
CREATE OR REPLACE FUNCTION "metering_charge_key"(p_reservation "Reservation", p_released bigint, p_spent bigint, p_now timestamp)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO "ApiKeySpend" ("apiKeyId", "period", "spentMicros", "heldMicros", "updatedAt")
  SELECT p_reservation."apiKeyId", p_reservation."period", GREATEST(p_spent, 0), 0, p_now
  WHERE p_reservation."apiKeyId" IS NOT NULL
  ON CONFLICT ("apiKeyId", "period") DO UPDATE SET
    "heldMicros" = GREATEST("ApiKeySpend"."heldMicros" - p_released, 0),
    "spentMicros" = GREATEST("ApiKeySpend"."spentMicros" + p_spent, 0),
    "updatedAt" = p_now;
$$;
