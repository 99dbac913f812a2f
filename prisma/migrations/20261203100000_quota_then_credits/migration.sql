-- A paid plan's call that does not fit in what is left of its quota uses the rest of the quota
-- and pays the share past it from credits (prisma/sql/metering_decide.sql, metering_share.sql).
ALTER TABLE "Reservation" ADD COLUMN "creditsPastQuota" BOOLEAN NOT NULL DEFAULT false;
