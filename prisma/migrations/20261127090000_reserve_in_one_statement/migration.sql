-- Reserving a call, and sending a message with its reservation, each in one statement. The
-- user's row lock is then held inside the database for the microseconds the checks take, not
-- across the round trips of an interactive transaction, so one user's concurrent sends no
-- longer queue behind each other's network latency. Every check comes before any write: a
-- refused call writes nothing. The billing rules are those of src/metering/metering.ts.

-- Decides, under the user's row lock, what a call holds, or why it is refused.
-- p: userId, apiKeyId (or null), period (first day of the month), quotas (each plan's monthly
-- tokens), tokens (the call's worst case), free (the model costs nothing), worstCostMicros.
-- Returns { refused, ...details } or { quotaTokens, creditMicros, keyMicros }.
CREATE FUNCTION "metering_decide"(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_user record;
  v_period date := (p->>'period')::date;
  v_tokens bigint := (p->>'tokens')::bigint;
  v_quota bigint;
  v_worst bigint := (p->>'worstCostMicros')::bigint;
  v_free boolean := (p->>'free')::boolean;
  v_counted bigint;
  v_available bigint;
  v_budget bigint;
  v_key_counted bigint;
  v_quota_tokens bigint := 0;
  v_credit_micros bigint := 0;
BEGIN
  SELECT "plan", "creditBalanceMicros", "creditHeldMicros", "deactivatedAt" INTO v_user
    FROM "User" WHERE "id" = (p->>'userId')::uuid FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('refused', 'NO_USER');
  END IF;
  IF v_user."deactivatedAt" IS NOT NULL THEN
    RETURN jsonb_build_object('refused', 'DEACTIVATED');
  END IF;
  v_quota := (p->'quotas'->>(v_user."plan"::text))::bigint;

  SELECT COALESCE(SUM("usedTokens" + "reservedTokens"), 0) INTO v_counted
    FROM "QuotaPeriod" WHERE "userId" = (p->>'userId')::uuid AND "period" = v_period;
  v_available := v_user."creditBalanceMicros" - v_user."creditHeldMicros";
  IF v_counted + v_tokens <= v_quota THEN
    v_quota_tokens := v_tokens;
    -- Within the quota, paid plans include the call; FREE still pays for priced models.
    IF v_user."plan" = 'FREE' AND NOT v_free THEN
      IF v_available < v_worst THEN
        RETURN jsonb_build_object('refused', 'INSUFFICIENT_CREDITS',
          'requiredMicros', v_worst, 'availableMicros', GREATEST(v_available, 0));
      END IF;
      v_credit_micros := v_worst;
    END IF;
  ELSIF v_user."plan" <> 'FREE' AND NOT v_free AND v_available >= v_worst THEN
    v_credit_micros := v_worst;
  ELSE
    RETURN jsonb_build_object('refused', 'QUOTA_EXCEEDED',
      'quota', v_quota, 'remaining', GREATEST(v_quota - v_counted, 0), 'requested', v_tokens);
  END IF;

  IF p->>'apiKeyId' IS NOT NULL THEN
    SELECT "monthlyBudgetMicros" INTO v_budget FROM "ApiKey" WHERE "id" = (p->>'apiKeyId')::uuid;
    IF v_budget IS NOT NULL THEN
      SELECT COALESCE(SUM("spentMicros" + "heldMicros"), 0) INTO v_key_counted
        FROM "ApiKeySpend" WHERE "apiKeyId" = (p->>'apiKeyId')::uuid AND "period" = v_period;
      IF v_key_counted + v_worst > v_budget THEN
        RETURN jsonb_build_object('refused', 'KEY_BUDGET_EXCEEDED', 'budgetMicros', v_budget,
          'remainingMicros', GREATEST(v_budget - v_key_counted, 0), 'requiredMicros', v_worst);
      END IF;
    END IF;
  END IF;

  RETURN jsonb_build_object('quotaTokens', v_quota_tokens, 'creditMicros', v_credit_micros,
    'keyMicros', CASE WHEN v_budget IS NULL THEN 0 ELSE v_worst END);
END $$;

-- Writes what metering_decide decided: the holds and the reservation row.
-- p as for metering_decide, plus reservationId, messageId, kind, model, price, promptEstimate,
-- leaseExpiresAt.
CREATE FUNCTION "metering_hold"(p jsonb, d jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_period date := (p->>'period')::date;
  v_credit_micros bigint := (d->>'creditMicros')::bigint;
  v_key_micros bigint := (d->>'keyMicros')::bigint;
BEGIN
  INSERT INTO "QuotaPeriod" ("userId", "period", "usedTokens", "reservedTokens", "updatedAt")
  VALUES ((p->>'userId')::uuid, v_period, 0, (d->>'quotaTokens')::bigint, now())
  ON CONFLICT ("userId", "period") DO UPDATE
    SET "reservedTokens" = "QuotaPeriod"."reservedTokens" + EXCLUDED."reservedTokens", "updatedAt" = now();
  IF v_credit_micros > 0 THEN
    UPDATE "User" SET "creditHeldMicros" = "creditHeldMicros" + v_credit_micros WHERE "id" = (p->>'userId')::uuid;
  END IF;
  IF p->>'apiKeyId' IS NOT NULL THEN
    INSERT INTO "ApiKeySpend" ("apiKeyId", "period", "spentMicros", "heldMicros", "updatedAt")
    VALUES ((p->>'apiKeyId')::uuid, v_period, 0, v_key_micros, now())
    ON CONFLICT ("apiKeyId", "period") DO UPDATE
      SET "heldMicros" = "ApiKeySpend"."heldMicros" + EXCLUDED."heldMicros", "updatedAt" = now();
  END IF;
  INSERT INTO "Reservation" ("id", "userId", "messageId", "apiKeyId", "keyMicros", "kind", "model", "period",
    "quotaTokens", "creditMicros", "paysWithCredits", "promptEstimate", "price", "leaseExpiresAt")
  VALUES ((p->>'reservationId')::uuid, (p->>'userId')::uuid, (p->>'messageId')::uuid, (p->>'apiKeyId')::uuid,
    v_key_micros, p->>'kind', p->>'model', v_period, (d->>'quotaTokens')::int, v_credit_micros,
    v_credit_micros > 0, (p->>'promptEstimate')::int, p->'price', (p->>'leaseExpiresAt')::timestamp);
END $$;

-- A call's reservation: decide, then hold unless refused. Returns metering_decide's answer.
CREATE FUNCTION "metering_reserve"(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_decision jsonb := "metering_decide"(p);
BEGIN
  IF NOT v_decision ? 'refused' THEN
    PERFORM "metering_hold"(p, v_decision);
  END IF;
  RETURN v_decision;
END $$;

-- sendMessage's writes: the reservation, the cap on replies running at once (counted under the
-- user's row lock, so concurrent sends cannot overshoot it), the conversation (created, or
-- touched and perhaps retitled) and the two messages.
-- p: reservation (metering_decide's p, with the hold's fields), maxRunning, now, conversation
-- { id, existing, title, model, systemPrompt }, userMessage { id, content }, assistantMessage { id, model }.
CREATE FUNCTION "chat_send_message"(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_reservation jsonb := p->'reservation';
  v_user_id uuid := (v_reservation->>'userId')::uuid;
  v_conversation jsonb := p->'conversation';
  v_conversation_id uuid := (v_conversation->>'id')::uuid;
  v_now timestamp := (p->>'now')::timestamp;
  v_decision jsonb := "metering_decide"(v_reservation);
  v_running bigint;
BEGIN
  IF v_decision ? 'refused' THEN
    RETURN v_decision;
  END IF;
  SELECT count(*) INTO v_running FROM "Message"
    WHERE "userId" = v_user_id AND "role" = 'ASSISTANT' AND "status" IN ('PENDING', 'STREAMING');
  IF v_running >= (p->>'maxRunning')::int THEN
    RETURN jsonb_build_object('refused', 'TOO_MANY_RUNNING');
  END IF;
  IF (v_conversation->>'existing')::boolean THEN
    UPDATE "Conversation" SET "title" = COALESCE(v_conversation->>'title', "title"), "updatedAt" = v_now
      WHERE "id" = v_conversation_id AND "userId" = v_user_id;
    IF NOT FOUND THEN
      RETURN jsonb_build_object('refused', 'NO_CONVERSATION');
    END IF;
  ELSE
    INSERT INTO "Conversation" ("id", "userId", "title", "model", "systemPrompt", "createdAt", "updatedAt")
    VALUES (v_conversation_id, v_user_id, v_conversation->>'title', v_conversation->>'model',
      v_conversation->>'systemPrompt', v_now, v_now);
  END IF;
  PERFORM "metering_hold"(v_reservation, v_decision);
  INSERT INTO "Message" ("id", "conversationId", "userId", "role", "content", "status", "createdAt", "updatedAt")
  VALUES ((p->'userMessage'->>'id')::uuid, v_conversation_id, v_user_id, 'USER', p->'userMessage'->>'content',
    'COMPLETE', v_now, v_now);
  INSERT INTO "Message" ("id", "conversationId", "userId", "role", "content", "status", "model", "createdAt", "updatedAt")
  VALUES ((p->'assistantMessage'->>'id')::uuid, v_conversation_id, v_user_id, 'ASSISTANT', '', 'STREAMING',
    p->'assistantMessage'->>'model', v_now, v_now);
  RETURN v_decision;
END $$;
