# syntax=docker/dockerfile:1
# Multi-stage: build with dev tools, run with production dependencies only, as a non-root user.
# scripts/docker-check.sh runs these same steps without Docker (CI has no Docker engine).
# The base image is pinned to an exact Node release, not to a digest: this repository is built and
# checked where no Docker registry is reachable, so no digest could be read and verified here. To pin
# the digest as well: docker buildx imagetools inspect node:24.14.0-bookworm-slim, then write
# node:24.14.0-bookworm-slim@sha256:<digest> in both FROM lines.

FROM node:24.14.0-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json prisma.config.ts codegen.ts schema.graphql ./
COPY scripts ./scripts
COPY prisma ./prisma
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run generate && npm run build

FROM node:24.14.0-bookworm-slim AS runtime
ENV NODE_ENV=production PORT=4000 DATA_DIR=/app/data
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
# The Prisma client is already compiled into dist: no generate step at runtime. Omitting optional
# (peer) dependencies keeps the Prisma CLI, which @prisma/client lists as an optional peer, out (~200 MB).
# scripts/prune-runtime.sh then deletes the files of those dependencies that the server never loads.
RUN npm ci --omit=dev --omit=optional --omit=peer --ignore-scripts --no-audit --no-fund && npm cache clean --force \
    && sh scripts/prune-runtime.sh
COPY prisma ./prisma
COPY --from=build /app/dist ./dist
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 4000
# Healthy when ready: the database (and Redis when configured) answers. No curl in slim images: Node's fetch.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s CMD node -e "fetch('http://127.0.0.1:'+process.env.PORT+'/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# Migrations are applied by the server itself at start-up. The admin command is compiled too:
#   docker run --rm -v <data volume>:/app/data <image> npm run admin:prod -- promote <email>
# (with the embedded database, while no server uses that volume).
CMD ["node", "dist/src/main.js"]
