# Base images for docker/Dockerfile on a machine that reaches no image registry (scripts/docker-test.sh
# builds them): a Debian bookworm root filesystem made with debootstrap and imported as ROOTFS, plus
# the machine's own Node. The build context is a directory that the script fills with:
#   node                 the `node` binary (Node 20, linked against glibc, as Debian bookworm has it)
#   npm/                 its npm (lib/node_modules/npm)
#   include/node/        its headers, so native modules compile without downloading them
#   ca-certificates.crt  the CA bundle the machine trusts, for `npm ci` behind a TLS-inspecting proxy
ARG ROOTFS=ncps-rootfs:bookworm

# Runtime base: what node:20-bookworm-slim gives docker/Dockerfile (Node and a `node` user, uid 1000).
FROM ${ROOTFS} AS runtime
COPY node /usr/bin/node
RUN groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --create-home --shell /bin/sh node \
 && node --version
CMD ["node"]

# Build base: what node:20-bookworm gives the build stage (npm, a C++ toolchain and Python for node-gyp).
FROM runtime AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY npm /usr/lib/node_modules/npm
COPY include/node /usr/include/node
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/bin/npx \
 && mkdir -p /usr/etc \
 && printf 'nodedir=/usr\ncafile=/etc/ssl/certs/ca-certificates.crt\nfund=false\naudit=false\nupdate-notifier=false\n' > /usr/etc/npmrc \
 && npm --version
