-- Stripe events acknowledged without effect say why, and an unapplied purchase names its payment:
-- its refund or dispute is then acknowledged too instead of failing on every retry.
ALTER TABLE "ProcessedStripeEvent" ADD COLUMN "unappliedReason" TEXT, ADD COLUMN "stripePaymentIntentId" TEXT;
CREATE INDEX "ProcessedStripeEvent_stripePaymentIntentId_idx" ON "ProcessedStripeEvent"("stripePaymentIntentId");
