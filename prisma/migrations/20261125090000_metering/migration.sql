-- Metering: reservations as rows of their own, cached and reasoning tokens, a full credit
-- ledger, Stripe billing state, and no cascade from a user to what they were charged.

ALTER TYPE "CreditEntryKind" ADD VALUE 'GRANT' BEFORE 'PURCHASE';
ALTER TYPE "CreditEntryKind" ADD VALUE 'DISPUTE' AFTER 'REFUND';

ALTER TABLE "User"
  ADD COLUMN "creditHeldMicros" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "stripeCustomerId" TEXT,
  ADD COLUMN "stripeSubscriptionId" TEXT,
  ADD COLUMN "subscriptionStatus" TEXT,
  ADD COLUMN "pastDue" BOOLEAN NOT NULL DEFAULT false,
  ADD COLUMN "subscriptionEventAt" TIMESTAMP(3),
  ADD COLUMN "signupCreditsPending" BOOLEAN NOT NULL DEFAULT false;
-- Accounts from before credits existed get the sign-up credits too (granted at the next start).
UPDATE "User" SET "signupCreditsPending" = true;
CREATE UNIQUE INDEX "User_stripeCustomerId_key" ON "User"("stripeCustomerId");

ALTER TABLE "Message"
  ADD COLUMN "cachedTokens" INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN "reasoningTokens" INTEGER NOT NULL DEFAULT 0;

ALTER TABLE "UsageDaily"
  ADD COLUMN "cachedTokens" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "reasoningTokens" BIGINT NOT NULL DEFAULT 0;

CREATE TABLE "Reservation" (
    "id" UUID NOT NULL,
    "userId" UUID NOT NULL,
    "messageId" UUID,
    "kind" TEXT NOT NULL DEFAULT 'CHAT',
    "model" TEXT NOT NULL,
    "period" DATE NOT NULL,
    "quotaTokens" INTEGER NOT NULL DEFAULT 0,
    "creditMicros" BIGINT NOT NULL DEFAULT 0,
    "paysWithCredits" BOOLEAN NOT NULL DEFAULT false,
    "promptEstimate" INTEGER NOT NULL DEFAULT 0,
    "price" JSONB NOT NULL,
    "leaseExpiresAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "settledAt" TIMESTAMP(3),
    "settledBy" TEXT,
    "chargedUsage" JSONB,
    "chargedMicros" BIGINT NOT NULL DEFAULT 0,
    "correctedAt" TIMESTAMP(3),
    CONSTRAINT "Reservation_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "Reservation_settledAt_leaseExpiresAt_idx" ON "Reservation"("settledAt", "leaseExpiresAt");
CREATE INDEX "Reservation_messageId_idx" ON "Reservation"("messageId");
ALTER TABLE "Reservation" ADD CONSTRAINT "Reservation_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Generations running across the upgrade keep their quota hold, now as reservation rows.
INSERT INTO "Reservation" ("id", "userId", "messageId", "model", "period", "quotaTokens", "promptEstimate", "price", "leaseExpiresAt", "createdAt")
SELECT "id", "userId", "id", COALESCE("model", 'unknown'),
       COALESCE("reservationPeriod", date_trunc('month', "createdAt")::date),
       "reservedTokens", "promptEstimate",
       '{"inputMicrosPerMillion":0,"cachedInputMicrosPerMillion":0,"outputMicrosPerMillion":0,"reasoningMicrosPerMillion":0,"source":"configuration"}'::jsonb,
       COALESCE("leaseExpiresAt", CURRENT_TIMESTAMP), "createdAt"
FROM "Message"
WHERE "role" = 'ASSISTANT' AND "status" IN ('PENDING', 'STREAMING');

DROP INDEX "Message_status_leaseExpiresAt_idx";
ALTER TABLE "Message"
  DROP COLUMN "reservedTokens",
  DROP COLUMN "reservationPeriod",
  DROP COLUMN "promptEstimate",
  DROP COLUMN "leaseExpiresAt";

ALTER TABLE "CreditLedgerEntry" ADD COLUMN "stripePaymentIntentId" TEXT, ADD COLUMN "stripeAmountCents" INTEGER;
CREATE INDEX "CreditLedgerEntry_stripePaymentIntentId_idx" ON "CreditLedgerEntry"("stripePaymentIntentId");

-- What a user was charged and paid is never deleted with them: users are deactivated, not deleted.
ALTER TABLE "UsageDaily" DROP CONSTRAINT "UsageDaily_userId_fkey";
ALTER TABLE "UsageDaily" ADD CONSTRAINT "UsageDaily_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "QuotaPeriod" DROP CONSTRAINT "QuotaPeriod_userId_fkey";
ALTER TABLE "QuotaPeriod" ADD CONSTRAINT "QuotaPeriod_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "CreditLedgerEntry" DROP CONSTRAINT "CreditLedgerEntry_userId_fkey";
ALTER TABLE "CreditLedgerEntry" ADD CONSTRAINT "CreditLedgerEntry_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
