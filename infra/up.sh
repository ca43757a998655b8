#!/usr/bin/env bash
# The start command: provision the host (idempotent), install packages, build, start Berth.
# With no DATABASE_URL, Berth starts (or reuses) a local Postgres container for itself.
set -euo pipefail
cd "$(dirname "$0")/.."

bash infra/provision.sh
pnpm install --frozen-lockfile --reporter=silent
# The compiled service (tsc -b is incremental: an up-to-date build takes a few seconds).
pnpm --silent build

# Image references provisioning chose (official ones, or local equivalents when offline);
# variables already set in the environment win.
if [[ -f .berth/images.env ]]; then
  while IFS='=' read -r key value; do
    [[ "$key" =~ ^[A-Z_]+$ ]] || continue
    [[ -n "${!key:-}" ]] || export "$key=$value"
  done < .berth/images.env
fi

# A development key, made once and kept in .berth/ (git-ignored), unless one is given.
if [[ -z "${BERTH_BOOTSTRAP_API_KEY:-}" ]]; then
  mkdir -p .berth
  if [[ ! -s .berth/bootstrap-api-key ]]; then
    (umask 077 && node -e "process.stdout.write('sk-berth-dev-' + require('crypto').randomBytes(24).toString('base64url'))" > .berth/bootstrap-api-key)
  fi
  BERTH_BOOTSTRAP_API_KEY=$(cat .berth/bootstrap-api-key)
  export BERTH_BOOTSTRAP_API_KEY
  echo "up: bootstrap API key (kept in .berth/bootstrap-api-key): $BERTH_BOOTSTRAP_API_KEY"
fi

# node runs the compiled service itself (not through pnpm), so SIGTERM reaches it and its exit code
# is ours. `pnpm dev` runs the sources with tsx instead, restarting on every change.
exec node --enable-source-maps services/api/dist/main.js
