-- Every upstream call made for a reply, with its usage and cost, and the provider that ended each reply.
CREATE TYPE "AttemptOutcome" AS ENUM ('OK', 'ERROR', 'TIMEOUT', 'CUT', 'REFUSED');

ALTER TABLE "Message" ADD COLUMN "provider" TEXT;

CREATE TABLE "MessageAttempt" (
    "id" UUID NOT NULL,
    "messageId" UUID,
    "userId" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "provider" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "upstreamModel" TEXT NOT NULL,
    "outcome" "AttemptOutcome" NOT NULL,
    "httpStatus" INTEGER,
    "errorCode" TEXT,
    "continued" BOOLEAN NOT NULL DEFAULT false,
    "promptTokens" INTEGER NOT NULL DEFAULT 0,
    "cachedTokens" INTEGER NOT NULL DEFAULT 0,
    "cacheWriteTokens" INTEGER NOT NULL DEFAULT 0,
    "completionTokens" INTEGER NOT NULL DEFAULT 0,
    "reasoningTokens" INTEGER NOT NULL DEFAULT 0,
    "usageEstimated" BOOLEAN NOT NULL DEFAULT false,
    "costMicros" BIGINT NOT NULL DEFAULT 0,
    "billed" BOOLEAN NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL,
    "firstTokenMs" INTEGER,
    "durationMs" INTEGER,

    CONSTRAINT "MessageAttempt_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "MessageAttempt_messageId_position_key" ON "MessageAttempt"("messageId", "position");
CREATE INDEX "MessageAttempt_startedAt_idx" ON "MessageAttempt"("startedAt");
CREATE INDEX "MessageAttempt_userId_startedAt_idx" ON "MessageAttempt"("userId", "startedAt");

ALTER TABLE "MessageAttempt" ADD CONSTRAINT "MessageAttempt_messageId_fkey" FOREIGN KEY ("messageId") REFERENCES "Message"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "MessageAttempt" ADD CONSTRAINT "MessageAttempt_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
