-- Appends an entry to the append-only credit ledger and moves the balance cached on the user. The
-- UPDATE takes the user's row lock, so concurrent entries line up and each "balanceAfterMicros" is
-- the running balance. GRANT and PURCHASE add; USAGE, REFUND and DISPUTE take away; ADJUSTMENT
-- either way. p: id, userId, kind, amountMicros (signed), reason, and optionally stripeEventId,
-- stripePaymentIntentId, stripeAmountCents, actorUserId, messageId. Returns the entry.
CREATE OR REPLACE FUNCTION "credit_ledger_append"(p jsonb) RETURNS "CreditLedgerEntry" LANGUAGE plpgsql AS $$
DECLARE
  v_kind "CreditEntryKind" := (p->>'kind')::"CreditEntryKind";
  v_amount bigint := (p->>'amountMicros')::bigint;
  v_now timestamp := timezone('UTC', now());
  v_balance bigint;
  v_entry "CreditLedgerEntry";
BEGIN
  IF v_amount = 0 THEN
    RAISE EXCEPTION 'a ledger entry moves a non-zero amount';
  ELSIF v_kind IN ('GRANT', 'PURCHASE') AND v_amount < 0 THEN
    RAISE EXCEPTION '% entries add credits', v_kind;
  ELSIF v_kind IN ('USAGE', 'REFUND', 'DISPUTE') AND v_amount > 0 THEN
    RAISE EXCEPTION '% entries take credits away', v_kind;
  END IF;
  UPDATE "User" SET "creditBalanceMicros" = "creditBalanceMicros" + v_amount, "updatedAt" = v_now
    WHERE "id" = (p->>'userId')::uuid
    RETURNING "creditBalanceMicros" INTO v_balance;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no such user';
  END IF;
  INSERT INTO "CreditLedgerEntry" ("id", "userId", "kind", "amountMicros", "balanceAfterMicros", "reason", "stripeEventId",
    "stripePaymentIntentId", "stripeAmountCents", "actorUserId", "messageId", "createdAt")
  VALUES ((p->>'id')::uuid, (p->>'userId')::uuid, v_kind, v_amount, v_balance, p->>'reason', p->>'stripeEventId',
    p->>'stripePaymentIntentId', (p->>'stripeAmountCents')::int, (p->>'actorUserId')::uuid, (p->>'messageId')::uuid, v_now)
  RETURNING * INTO v_entry;
  RETURN v_entry;
END $$;
