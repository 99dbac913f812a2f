-- Lets any instance close a generation whose instance died: the reservation to settle, the
-- prompt estimate to charge, and a lease that the running instance keeps renewing.
ALTER TABLE "Message" ADD COLUMN "reservedTokens" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN "reservationPeriod" DATE,
ADD COLUMN "promptEstimate" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN "leaseExpiresAt" TIMESTAMP(3);

-- CreateIndex
CREATE INDEX "Message_status_leaseExpiresAt_idx" ON "Message"("status", "leaseExpiresAt");
