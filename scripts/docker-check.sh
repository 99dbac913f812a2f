#!/usr/bin/env bash
# Runs the Dockerfile's build and run steps without a Docker engine: a build stage with dev
# dependencies, a runtime stage with production dependencies only, then starts the server the
# way the image's CMD does, checks it answers and shuts down cleanly on SIGTERM, then runs the
# compiled admin command on the data it left.
set -euo pipefail
show_log() { [ -f "${work:-}/server.log" ] && tail -20 "$work/server.log" >&2; }
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'status=$?; [ $status -ne 0 ] && show_log; if [ -n "${server_pid:-}" ]; then kill "$server_pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
mkdir -p "$work/build" "$work/runtime" "$work/data"

echo "-- build stage"
cd "$repo"
cp package.json package-lock.json prisma.config.ts codegen.ts schema.graphql "$work/build/"
cp -r scripts prisma "$work/build/"
(cd "$work/build" && npm ci --no-audit --no-fund --loglevel=error)
cp tsconfig.json tsconfig.build.json "$work/build/"
# COPY src merges into the src/generated that postinstall made; .dockerignore leaves out the host's.
tar --exclude=src/generated -cf - src | tar -xf - -C "$work/build"
(cd "$work/build" && npm run --silent generate && npm run --silent build)

echo "-- runtime stage"
cp package.json package-lock.json "$work/runtime/"
cp -r scripts "$work/runtime/"
(cd "$work/runtime" && npm ci --omit=dev --omit=optional --omit=peer --ignore-scripts --no-audit --no-fund --loglevel=error \
  && sh scripts/prune-runtime.sh)
echo "runtime dependencies: $(du -sm "$work/runtime/node_modules" | cut -f1) MB"
cp -r prisma "$work/runtime/"
cp -r "$work/build/dist" "$work/runtime/dist"
for dev_only in vitest prisma typescript tsx pino-pretty @graphql-codegen/cli playwright-core @copilotkit/aimock; do
  if [ -e "$work/runtime/node_modules/$dev_only" ]; then echo "dev dependency $dev_only in the runtime image" >&2; exit 1; fi
done

echo "-- run (CMD node dist/src/main.js)"
port=$(node -e "const s=require('net').createServer().listen(0,()=>{console.log(s.address().port);s.close()})")
cd "$work/runtime"
# The image's defaults: embedded database under DATA_DIR, no Redis (whatever the caller's shell has set).
env -u DATABASE_URL -u REDIS_URL NODE_ENV=production PORT="$port" HOST=127.0.0.1 DATA_DIR="$work/data" \
  JWT_SECRET="docker-check-secret-0123456789abcdef" DEMO_MODEL=true node dist/src/main.js > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 60); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.5; done
curl -fs "http://127.0.0.1:$port/ready" | grep -q '"database":"ok"'
# The image's HEALTHCHECK command, as written in the Dockerfile.
healthcheck="$(sed -n 's/^HEALTHCHECK .* CMD //p' "$repo/Dockerfile")"
[ -n "$healthcheck" ] || { echo "no HEALTHCHECK in the Dockerfile" >&2; exit 1; }
PORT="$port" sh -c "$healthcheck" || { echo "HEALTHCHECK failed: $healthcheck" >&2; exit 1; }
token="$(curl -fs "http://127.0.0.1:$port/graphql" -H 'content-type: application/json' \
  -d '{"query":"mutation { register(input: {email: \"docker@example.com\", password: \"correct horse battery\", name: \"D\"}) { accessToken } }"}' \
  | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(JSON.parse(s).data.register.accessToken))")"
# A message through the demo model: the Prisma query compiler and the tokenizer that prune-runtime.sh kept.
curl -fs "http://127.0.0.1:$port/graphql" -H 'content-type: application/json' -H "authorization: Bearer $token" \
  -d '{"query":"mutation { sendMessage(input: {content: \"hello\", stream: false}) { assistantMessage { content } } }"}' \
  | grep -q 'built-in demo model'
curl -fs "http://127.0.0.1:$port/graphql" -H 'content-type: application/json' -d '{"query":"{ models { id isDemo } }"}' \
  | grep -q '"isDemo":true'
# Production defaults: GraphiQL and introspection are off.
if curl -fs "http://127.0.0.1:$port/graphql" -H 'accept: text/html' | grep -qi graphiql; then echo "GraphiQL served in production" >&2; exit 1; fi
kill -TERM "$server_pid"
wait "$server_pid"; status=$?
server_pid=
grep -q 'applied database migrations' "$work/server.log"

echo "-- admin (npm run admin:prod -- promote, on the data the server left)"
admin() {
  env -u DATABASE_URL -u REDIS_URL NODE_ENV=production DATA_DIR="$work/data" \
    JWT_SECRET="docker-check-secret-0123456789abcdef" DEMO_MODEL=true "$@"
}
[ "$(admin npm run --silent admin:prod -- promote docker@example.com)" = "docker@example.com is now an ADMIN." ]
[ "$(admin node dist/scripts/admin.js promote docker@example.com)" = "docker@example.com was already an ADMIN." ]
if admin node dist/scripts/admin.js promote nobody@example.com 2>/dev/null; then echo "admin promoted an unknown e-mail" >&2; exit 1; fi
echo "docker-check: build, runtime install, start, migrate, serve, SIGTERM and admin all OK (exit $status)"
