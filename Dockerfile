# syntax=docker/dockerfile:1
#
# An image that runs `alyx serve` for one project: alyx, built from this checkout, plus the
# project's functions, built by `alyx build`. It has node and python3; functions in any other
# language need their runtime added (see "Other runtimes" below and docs/deploy.md).
#
#   docker build -t alyx-demo .                                    # the demo functions below
#   docker build --build-context project=../my-app -t my-app .     # your project (BuildKit)
#
# A project is a folder holding functions/ and, optionally, alyx.yaml. `--build-context
# project=DIR` replaces the `project` stage with that folder; its own .dockerignore, if any,
# applies to it (leave out node_modules/, build outputs and .alyx/).

ARG NODE_VERSION=22

# The project the image serves by default: the functions of examples/functions-demo that need
# nothing but node and python3 (hello-typescript is built by esbuild during the image build).
FROM scratch AS project
COPY examples/functions-demo/alyx.yaml /alyx.yaml
COPY examples/functions-demo/functions/hello-node/ /functions/hello-node/
COPY examples/functions-demo/functions/hello-python/ /functions/hello-python/
COPY examples/functions-demo/functions/hello-typescript/ /functions/hello-typescript/

# alyx itself: compiled TypeScript and the process-spawning addon (built with the C compiler of
# this full image), then only the production dependencies.
FROM node:${NODE_VERSION}-bookworm AS alyx
WORKDIR /opt/alyx
COPY package.json package-lock.json binding.gyp LICENSE ./
COPY scripts/build-addon.cjs scripts/
COPY native/ native/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
COPY bin/ bin/
COPY schemas/ schemas/
COPY shims/ shims/
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf src tsconfig.json tsconfig.build.json

# The project's functions, built here because `alyx serve` runs build outputs and never builds.
# A python function's requirements.txt becomes a .venv (python3-venv); it uses /usr/bin/python3,
# which the final image has too. Other runtimes: install the toolchains your functions' builds
# need in this stage, e.g.
#   RUN apt-get update && apt-get install -y --no-install-recommends golang-go
FROM alyx AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY --from=project . /srv/app/
RUN node /opt/alyx/bin/alyx.js build -C /srv/app

FROM node:${NODE_VERSION}-bookworm-slim
# Other runtimes: functions run with the interpreters of this image. Add the ones your functions
# use here (deno, bun, a python of another version, ...) or point runtimes.<name>.command in
# alyx.yaml at them. A compiled Go function needs no runtime.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=alyx /opt/alyx /opt/alyx
RUN ln -s /opt/alyx/bin/alyx.js /usr/local/bin/alyx
# The project stays owned by root, read-only to alyx; only .alyx/ (the embedded SQLite state,
# used when state.url is not a nats:// URL) is writable.
COPY --from=build /srv/app /srv/app
RUN mkdir -p /srv/app/.alyx && chown node:node /srv/app/.alyx
# The project is read-only: python should not try to write __pycache__ into it.
ENV PYTHONDONTWRITEBYTECODE=1
WORKDIR /srv/app
# The image's `node` user (uid 1000), by number so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8090
# For `docker run` (give ALYX_SERVER_PORT if alyx.yaml sets another port); Kubernetes ignores it
# and uses the probes of deploy/kubernetes/deployment.yaml.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.ALYX_SERVER_PORT || 8090) + '/api/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# alyx handles SIGTERM itself (drains within server.shutdown_timeout) and ends whatever its
# functions started, so it can run as PID 1.
ENTRYPOINT ["alyx"]
CMD ["serve"]
