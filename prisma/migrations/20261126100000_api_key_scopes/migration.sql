-- API keys get scopes, an optional monthly budget and an optional expiry; their spend is kept per month.

CREATE TYPE "ApiKeyScope" AS ENUM ('CHAT', 'READ', 'ACCOUNT');

-- Keys made before scopes existed keep doing what they could: every scope.
ALTER TABLE "ApiKey"
  ADD COLUMN "scopes" "ApiKeyScope"[] NOT NULL DEFAULT ARRAY['CHAT', 'READ', 'ACCOUNT']::"ApiKeyScope"[],
  ADD COLUMN "monthlyBudgetMicros" BIGINT,
  ADD COLUMN "expiresAt" TIMESTAMP(3);
ALTER TABLE "ApiKey" ALTER COLUMN "scopes" SET DEFAULT ARRAY['CHAT', 'READ']::"ApiKeyScope"[];

CREATE TABLE "ApiKeySpend" (
    "apiKeyId" UUID NOT NULL,
    "period" DATE NOT NULL,
    "spentMicros" BIGINT NOT NULL DEFAULT 0,
    "heldMicros" BIGINT NOT NULL DEFAULT 0,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "ApiKeySpend_pkey" PRIMARY KEY ("apiKeyId", "period")
);
ALTER TABLE "ApiKeySpend" ADD CONSTRAINT "ApiKeySpend_apiKeyId_fkey" FOREIGN KEY ("apiKeyId") REFERENCES "ApiKey"("id") ON DELETE CASCADE ON UPDATE CASCADE;

ALTER TABLE "Reservation"
  ADD COLUMN "apiKeyId" UUID,
  ADD COLUMN "keyMicros" BIGINT NOT NULL DEFAULT 0;
