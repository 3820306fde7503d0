#!/usr/bin/env bash
# Builds docker/Dockerfile and runs the image for real (npm run test:docker). Needs a running Docker
# engine, root (debootstrap), Debian's apt mirror and the npm registry; no image registry.
#
# No `FROM node:...` can be pulled, so the base images are made here: Debian bookworm by debootstrap
# (its tarball cached in $NCPS_DOCKER_CACHE), plus this machine's Node, npm and headers
# (docker/local-base.Dockerfile). They are kept as ncps-rootfs:bookworm, ncps-base:local and
# ncps-build-base:local, so a second run skips straight to building ncps (and Docker's layer cache
# skips `npm ci` when package-lock.json did not change).
#
# Then: the image starts with no flags (SQLite and local storage in its volume), answers /health,
# /pubkey and the Docker health check, runs as a non-root user, keeps its key and an uploaded store path
# across `docker restart` and across a new container on the same volume, and exits 0 soon after
# `docker stop`. Containers use the host network only and talk to a local fake upstream, never to
# cache.nixos.org. Containers, the volumes and the fake upstream are removed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The sources to build (default: this repository's working tree), e.g. a clean copy of it.
SOURCE=${NCPS_DOCKER_SOURCE:-$ROOT}
CACHE_DIR=${NCPS_DOCKER_CACHE:-/var/cache/ncps-docker-test}
PORT=${NCPS_DOCKER_PORT:-18591}
UPSTREAM_PORT=${NCPS_DOCKER_UPSTREAM_PORT:-18592}
IMAGE=${NCPS_DOCKER_IMAGE:-ncps:docker-test}
RUN_ID=ncps-docker-test-$$
PUT_TOKEN=docker-test-put-token
# The legacy builder: BuildKit would need the buildx plugin and would pull docker/dockerfile images.
export DOCKER_BUILDKIT=0

WORK=$(mktemp -d /tmp/ncps-docker-test.XXXXXX)
UPSTREAM_PID=''
CONTAINERS=()
VOLUMES=()
START=$SECONDS

cleanup() {
  local status=$?
  for c in "${CONTAINERS[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  for v in "${VOLUMES[@]}"; do docker volume rm -f "$v" >/dev/null 2>&1 || true; done
  if [[ -n $UPSTREAM_PID ]]; then kill "$UPSTREAM_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
  if ((status == 0)); then echo "PASS: docker image ($((SECONDS - START))s)"; else echo "FAIL: docker image (exit $status)" >&2; fi
}
trap cleanup EXIT

step() { printf '[%4ds] %s\n' "$((SECONDS - START))" "$*"; }
ok() { printf '        ok: %s\n' "$*"; }
fail() {
  echo "        FAILED: $*" >&2
  for c in "${CONTAINERS[@]}"; do
    docker logs --tail 30 "$c" 2>&1 | sed "s/^/        [$c] /" >&2 || true
  done
  exit 1
}

# --- base images ------------------------------------------------------------------------------------
# The bases are tied to this machine's Node: a different binary makes them again.
NODE_BIN=$(command -v node)
NODE_PREFIX=$(cd "$(dirname "$(readlink -f "$NODE_BIN")")/.." && pwd)
NODE_ID="$(node --version)-$(sha256sum "$NODE_BIN" | cut -c1-12)"
label_of() { docker image inspect -f '{{index .Config.Labels "ncps.node"}}' "$1" 2>/dev/null || true; }

apt_mirror() {
  local uri
  uri=$(grep -hsm1 -E '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true)
  [[ -n $uri ]] || uri=$(grep -hsm1 -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

make_rootfs() {
  local tarball=$CACHE_DIR/bookworm-minbase.tar
  if ! [[ -s $tarball ]]; then
    command -v debootstrap >/dev/null || fail "debootstrap is missing (apt-get install debootstrap)"
    local mirror
    mirror=$(apt_mirror)
    step "debootstrap --variant=minbase bookworm from $mirror (cached in $tarball)"
    mkdir -p "$CACHE_DIR"
    debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
      || { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap"; }
    tar -C "$WORK/rootfs" -cf "$tarball.partial" . && mv "$tarball.partial" "$tarball"
    rm -rf "$WORK/rootfs"
  fi
  step "docker import $tarball as ncps-rootfs:bookworm"
  docker import - ncps-rootfs:bookworm <"$tarball" >/dev/null
}

make_bases() {
  if [[ $(label_of ncps-base:local) == "$NODE_ID" && $(label_of ncps-build-base:local) == "$NODE_ID" ]]; then
    step "base images ncps-base:local and ncps-build-base:local are up to date (Node $NODE_ID)"
    return
  fi
  docker image inspect ncps-rootfs:bookworm >/dev/null 2>&1 || make_rootfs
  step "building ncps-base:local and ncps-build-base:local with Node $NODE_ID from $NODE_PREFIX"
  local ctx=$WORK/base-context
  mkdir -p "$ctx/include"
  cp "$NODE_BIN" "$ctx/node"
  cp -a "$NODE_PREFIX/lib/node_modules/npm" "$ctx/npm"
  cp -a "$NODE_PREFIX/include/node" "$ctx/include/node"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  local target
  for target in runtime build; do
    local tag=ncps-base:local
    [[ $target == build ]] && tag=ncps-build-base:local
    docker build --force-rm --network host -f "$ROOT/docker/local-base.Dockerfile" --target "$target" \
      --label "ncps.node=$NODE_ID" -t "$tag" "$ctx" >"$WORK/base-$target.log" 2>&1 \
      || { tail -30 "$WORK/base-$target.log" >&2; fail "building $tag"; }
  done
  rm -rf "$ctx"
}

# --- the image ------------------------------------------------------------------------------------
build_image() {
  step "building $IMAGE from docker/Dockerfile in $SOURCE (npm ci and tsc inside)"
  # The context holds only what the Dockerfile copies (the legacy builder ignores Dockerfile.dockerignore).
  (cd "$SOURCE" && tar -c --exclude='*.spec.ts' package.json package-lock.json tsconfig.json tsconfig.build.json src migrations docker) \
    | docker build --force-rm --network host -f docker/Dockerfile --build-arg BUILD_BASE=ncps-build-base:local \
      --build-arg BASE=ncps-base:local -t "$IMAGE" - >"$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log" >&2; fail "docker build"; }
  ok "built $(docker image inspect -f '{{.Id}}' "$IMAGE" | cut -c1-19), $(($(docker image inspect -f '{{.Size}}' "$IMAGE") / 1000000)) MB"
  local config
  config=$(docker image inspect -f '{{json .Config}}' "$IMAGE")
  node -e '
    const c = JSON.parse(process.argv[1]);
    const want = { User: "node", Volumes: ["/var/lib/ncps"], ExposedPorts: ["8501/tcp"], StopSignal: "SIGTERM",
      Healthcheck: ["CMD", "node", "/opt/ncps/healthcheck.js"], Entrypoint: ["node", "/opt/ncps/dist/src/main.js"], Cmd: ["serve"] };
    const got = { User: c.User, Volumes: Object.keys(c.Volumes || {}), ExposedPorts: Object.keys(c.ExposedPorts || {}),
      StopSignal: c.StopSignal, Healthcheck: c.Healthcheck && c.Healthcheck.Test, Entrypoint: c.Entrypoint, Cmd: c.Cmd };
    if (JSON.stringify(got) !== JSON.stringify(want)) { console.error(JSON.stringify(got)); process.exit(1); }
  ' "$config" || fail "image configuration (user, volume, port, health check, entrypoint)"
  ok "image runs 'serve' as user node, volume /var/lib/ncps, exposes 8501, HEALTHCHECK healthcheck.js"
}

# --- helpers --------------------------------------------------------------------------------------
url() { echo "http://127.0.0.1:$PORT$1"; }

# A fake upstream on the host: a nix-cache-info, nothing else.
start_upstream() {
  node -e '
    require("node:http").createServer((req, res) => {
      if (req.url === "/nix-cache-info") res.end("StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n");
      else { res.statusCode = 404; res.end(); }
    }).listen(Number(process.argv[1]), "127.0.0.1");
  ' "$UPSTREAM_PORT" &
  UPSTREAM_PID=$!
}

# Starts a container of $IMAGE on volume $2 with no flags: configuration by environment only.
run_container() {
  local name=$1 volume=$2
  CONTAINERS+=("$name")
  docker run -d --name "$name" --network host -v "$volume:/var/lib/ncps" --health-interval 2s \
    -e SERVER_ADDR="127.0.0.1:$PORT" -e CACHE_HOSTNAME=docker-test.ncps \
    -e CACHE_UPSTREAM_URLS="http://127.0.0.1:$UPSTREAM_PORT" \
    -e CACHE_ALLOW_PUT_VERB=true -e CACHE_PUT_TOKEN="$PUT_TOKEN" "$IMAGE" >/dev/null
}

# Waits until /health answers 200 and Docker's health check reports healthy.
wait_healthy() {
  local name=$1 deadline=$((SECONDS + 120)) code health
  while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$(url /health)" || true)
    health=$(docker inspect -f '{{.State.Health.Status}}' "$name")
    [[ $code == 200 && $health == healthy ]] && break
    [[ $(docker inspect -f '{{.State.Running}}' "$name") == true ]] || fail "$name exited while starting"
    ((SECONDS < deadline)) || fail "$name not healthy after 120s (/health $code, Docker health $health)"
    sleep 1
  done
  ok "$name: GET /health 200, Docker health check: healthy"
}

pubkey() { curl -fsS "$(url /pubkey)"; }

# docker stop: SIGTERM, which ncps handles by finishing in-flight work and exiting 0.
stop_container() {
  local name=$1 began=$SECONDS code
  docker stop -t 10 "$name" >/dev/null
  local took=$((SECONDS - began))
  code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
  [[ $code == 0 ]] || fail "$name exited $code on docker stop"
  ((took < 8)) || fail "$name took ${took}s to stop (10s is Docker's kill timeout)"
  # Read the logs whole first: with pipefail, `docker logs | grep -q` fails when grep stops reading early.
  local logs
  logs=$(docker logs "$name" 2>&1)
  grep -q 'shutting down' <<<"$logs" || fail "$name did not log its graceful shutdown"
  ok "$name: docker stop → exit code 0 in ${took}s, logged a graceful shutdown"
}

# A store path uploaded through the cache: an uncompressed NAR and its narinfo.
make_upload() {
  node -e '
    const { createHash, randomBytes } = require("node:crypto");
    const fs = require("node:fs");
    const A = "0123456789abcdfghijklmnpqrsvwxyz";
    const nix32 = (b) => { let s = ""; for (let n = Math.ceil((b.length * 8) / 5) - 1; n >= 0; n--) {
      const bit = n * 5, i = bit >> 3, sh = bit & 7; const hi = i + 1 < b.length ? b[i + 1] << (8 - sh) : 0;
      s += A[((b[i] >> sh) | hi) & 0x1f]; } return s; };
    const dir = process.argv[1], nar = randomBytes(4096), hash = nix32(randomBytes(20));
    const narName = nix32(createHash("sha256").update(nar).digest());
    fs.writeFileSync(`${dir}/nar`, nar);
    fs.writeFileSync(`${dir}/hash`, hash);
    fs.writeFileSync(`${dir}/narname`, narName);
    fs.writeFileSync(`${dir}/narinfo`, [`StorePath: /nix/store/${hash}-docker-test`, `URL: nar/${narName}.nar`,
      "Compression: none", `FileHash: sha256:${narName}`, "FileSize: 4096", `NarHash: sha256:${narName}`,
      "NarSize: 4096", "References: ", ""].join("\n"));
  ' "$WORK"
  HASH=$(cat "$WORK/hash")
  NAR_PATH=/nar/$(cat "$WORK/narname").nar
}

check_upload_served() {
  local what=$1
  curl -fsS -o "$WORK/got-narinfo" "$(url "/$HASH.narinfo")" || fail "$what: narinfo not served"
  grep -q "^StorePath: /nix/store/$HASH-docker-test$" "$WORK/got-narinfo" || fail "$what: wrong narinfo"
  curl -fsS -o "$WORK/got-nar" "$(url "$NAR_PATH")" || fail "$what: NAR not served"
  cmp -s "$WORK/nar" "$WORK/got-nar" || fail "$what: NAR bytes differ"
  ok "$what: uploaded narinfo and NAR served, bytes identical"
}

# --- the test -------------------------------------------------------------------------------------
docker info >/dev/null 2>&1 || fail "no Docker engine (start dockerd)"
make_bases
build_image
start_upstream

VOLUME=$RUN_ID-data
VOLUMES+=("$VOLUME")
docker volume create "$VOLUME" >/dev/null

step "first start on a new volume, no flags"
run_container "$RUN_ID-1" "$VOLUME"
wait_healthy "$RUN_ID-1"
KEY=$(pubkey)
[[ $KEY =~ ^docker-test\.ncps-1:[A-Za-z0-9+/]{43}=$ ]] || fail "unexpected /pubkey: $KEY"
ok "GET /pubkey: $KEY"

uid=$(docker exec "$RUN_ID-1" id -u)
((uid != 0)) || fail "docker exec runs as root"
owner=$(docker exec "$RUN_ID-1" awk '/^Uid:/ {print $2, $3}' /proc/1/status)
[[ $owner == "$uid $uid" ]] || fail "PID 1 runs as uid/euid $owner"
cmdline=$(docker exec "$RUN_ID-1" sh -c "tr '\\0' ' ' </proc/1/cmdline")
[[ $cmdline == *"/opt/ncps/dist/src/main.js serve"* ]] || fail "PID 1 is not ncps: $cmdline"
files=$(docker exec "$RUN_ID-1" find /var/lib/ncps -not -user "$uid")
[[ -z $files ]] || fail "files in the volume not owned by uid $uid: $files"
docker exec "$RUN_ID-1" test -s /var/lib/ncps/db/ncps.sqlite || fail "no SQLite database in the volume"
ok "runs as uid $uid (exec and PID 1 '$cmdline'), SQLite database and data in /var/lib/ncps owned by it"

make_upload
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary "@$WORK/nar" "$(url "$NAR_PATH")")
[[ $code == 401 ]] || fail "PUT without the token answered $code"
curl -fsS -X PUT -H "Authorization: Bearer $PUT_TOKEN" --data-binary "@$WORK/nar" "$(url "$NAR_PATH")" || fail "PUT NAR"
curl -fsS -X PUT -H "Authorization: Bearer $PUT_TOKEN" --data-binary "@$WORK/narinfo" "$(url "/$HASH.narinfo")" || fail "PUT narinfo"
check_upload_served "before restart"

step "docker stop, docker start"
stop_container "$RUN_ID-1"
docker start "$RUN_ID-1" >/dev/null
wait_healthy "$RUN_ID-1"
[[ $(pubkey) == "$KEY" ]] || fail "another key after docker restart: $(pubkey)"
ok "same /pubkey after restart"
check_upload_served "after restart"
stop_container "$RUN_ID-1"

step "new container on the same volume"
docker rm "$RUN_ID-1" >/dev/null
run_container "$RUN_ID-2" "$VOLUME"
wait_healthy "$RUN_ID-2"
[[ $(pubkey) == "$KEY" ]] || fail "another key in a new container on the same volume: $(pubkey)"
ok "same /pubkey in a new container"
check_upload_served "new container"
stop_container "$RUN_ID-2"

# The key comes from the volume, not from the image or the host name: a new volume gets its own.
step "new container on a new volume"
VOLUMES+=("$RUN_ID-fresh")
docker volume create "$RUN_ID-fresh" >/dev/null
run_container "$RUN_ID-3" "$RUN_ID-fresh"
wait_healthy "$RUN_ID-3"
FRESH=$(pubkey)
[[ $FRESH != "$KEY" ]] || fail "a new volume served the old key"
code=$(curl -s -o /dev/null -w '%{http_code}' "$(url "/$HASH.narinfo")")
[[ $code == 404 ]] || fail "a new volume answered $code for the old upload"
ok "a new volume has its own key and not the upload (404)"
stop_container "$RUN_ID-3"
