-- Decides, under the user's row lock, what a call holds, or why it is refused.
-- p: userId, apiKeyId (or null), period (first day of the month), quotas (each plan's monthly
-- tokens), tokens (the call's worst case), free (the model costs nothing), worstCostMicros.
-- Returns { refused, ...details } or { quotaTokens, creditMicros, creditsPastQuota, keyMicros }.
CREATE OR REPLACE FUNCTION "metering_decide"(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
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
  v_past_quota boolean := false;
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
  ELSIF v_user."plan" <> 'FREE' AND NOT v_free
      AND v_available >= v_worst - v_worst * GREATEST(v_quota - v_counted, 0) / GREATEST(v_tokens, 1) THEN
    -- Past the quota a paid plan continues on credits: what is left of the quota covers its share
    -- of the call, credits the rest of the worst case (metering_share divides the real cost alike).
    v_quota_tokens := GREATEST(v_quota - v_counted, 0);
    v_credit_micros := v_worst - v_worst * v_quota_tokens / GREATEST(v_tokens, 1);
    v_past_quota := true;
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

  RETURN jsonb_build_object('quotaTokens', v_quota_tokens, 'creditMicros', v_credit_micros, 'creditsPastQuota', v_past_quota,
    'keyMicros', CASE WHEN v_budget IS NULL THEN 0 ELSE v_worst END);
END $$;
