-- Prompt-cache writes counted apart from the rest of the prompt, as they are priced apart
-- (prisma/sql/generation_record_final.sql, usage_add_to_daily.sql). Earlier rows wrote none.
ALTER TABLE "Message" ADD COLUMN "cacheWriteTokens" INTEGER NOT NULL DEFAULT 0;

ALTER TABLE "UsageDaily" ADD COLUMN "cacheWriteTokens" BIGINT NOT NULL DEFAULT 0;
