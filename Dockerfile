# syntax=docker/dockerfile:1
# csr-signer controller image: `docker build -t csr-signer:latest .`
# Pin NODE_IMAGE by digest in production (node:24-bookworm-slim@sha256:...).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies first, so that this layer is reused while only src/ changes. No install scripts:
# the only package that has one (esbuild, via tsx) is a test tool the build does not use.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-fund --no-audit --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# tsc -p tsconfig.build.json: src/ -> dist/src/. Then drop the devDependencies.
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-fund --no-audit --loglevel=error

FROM ${NODE_IMAGE}
WORKDIR /app
ENV NODE_ENV=production
# Only what runs: compiled code, production dependencies, package.json ("type": "module").
COPY --from=build --chown=0:0 /app/package.json ./package.json
COPY --from=build --chown=0:0 /app/node_modules ./node_modules
COPY --from=build --chown=0:0 /app/dist ./dist
# Files owned by root and not writable by the process; matches the Deployment's runAsUser.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["node", "dist/src/cli/main.js"]
