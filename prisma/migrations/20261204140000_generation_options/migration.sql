-- How a reply was asked for (sampling, output cap, response format), as the client gave them, so
-- that a regenerated reply, and the reply after tool results, are asked for the same way.
-- Earlier replies have none: theirs use the defaults.
ALTER TABLE "Message" ADD COLUMN "generationOptions" JSONB;
