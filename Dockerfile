# syntax=docker/dockerfile:1
# csr-signer controller image: `docker build -t csr-signer:latest .`
# Pin NODE_IMAGE by digest in production (node:24-bookworm-slim@sha256:...).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies first, so that this layer is reused while only src/ changes. No install scripts:
# the only package that has one, esbuild, finds its binary in its @esbuild/<platform> dependency.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-fund --no-audit --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY hack/bundle.mjs ./hack/bundle.mjs
COPY src ./src
# Type-check src/, then bundle the CLI and its npm dependencies into dist/csr-signer.mjs (hack/bundle.mjs).
RUN npm run build

FROM ${NODE_IMAGE}
WORKDIR /app
ENV NODE_ENV=production
# Only what runs: the one-file bundle (no node_modules: it holds the code of the dependencies it uses).
COPY --from=build --chown=0:0 /app/dist/csr-signer.mjs ./dist/csr-signer.mjs
# Files owned by root and not writable by the process; matches the Deployment's runAsUser.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["node", "dist/csr-signer.mjs"]
