#!/bin/sh
# Deletes what the runtime image's production dependencies ship but the server never loads, after
# `npm ci --omit=dev` in the given directory. scripts/docker-check.sh starts the pruned server and
# sends a message through it, so a dependency that starts to need a deleted file fails the check.
set -eu
cd "${1:-.}/node_modules"
# Type declarations and source maps: read by compilers and debuggers, not by Node.
find . -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete
# Prisma's runtime has a query compiler per database, in two sizes; the client generated from
# prisma/schema.prisma (PostgreSQL, embedded or not) loads only this one.
find @prisma/client/runtime -name 'query_compiler_*' ! -name 'query_compiler_fast_bg.postgresql.*' -delete
# The tokenizer: src/metering/tokens.ts requires its CommonJS build of o200k_base; the browser
# bundles, the ES module build, the sources and the other encodings go.
rm -rf gpt-tokenizer/dist gpt-tokenizer/esm gpt-tokenizer/src gpt-tokenizer/data
find gpt-tokenizer/cjs/bpeRanks gpt-tokenizer/cjs/encoding -type f ! -name 'o200k_base.*' -delete
