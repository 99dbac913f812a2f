-- "Sign out everywhere": access tokens issued before this time are refused.
ALTER TABLE "User" ADD COLUMN "sessionsRevokedAt" TIMESTAMP(3);
