-- Who pays for a call of p_tokens tokens costing p_cost: the tokens its quota counts and the micros
-- its credits pay. A call within the quota counts every token (credits pay all of the cost only on
-- FREE, which pays with credits); a paid plan's call past the quota (creditsPastQuota) counts up to
-- the tokens it held, and credits pay the rest of the cost in proportion, rounded up. A call that
-- used no tokens (a price per call) is paid from credits when it pays with them at all.
CREATE OR REPLACE FUNCTION "metering_share"(p_reservation "Reservation", p_tokens bigint, p_cost bigint,
  OUT quota_tokens bigint, OUT credit_micros bigint)
LANGUAGE sql IMMUTABLE AS $$
  SELECT
    CASE WHEN p_reservation."creditsPastQuota" THEN LEAST(p_tokens, p_reservation."quotaTokens") ELSE p_tokens END,
    CASE
      WHEN NOT p_reservation."paysWithCredits" THEN 0
      WHEN p_reservation."creditsPastQuota" AND p_tokens > 0
        THEN p_cost - p_cost * LEAST(p_tokens, p_reservation."quotaTokens") / p_tokens
      ELSE p_cost
    END;
$$;
