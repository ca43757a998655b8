#!/usr/bin/env bash
# The start command: provision the host (idempotent), install packages, build, start Berth.
# With no DATABASE_URL, Berth starts (or reuses) a local Postgres container for itself.
set -euo pipefail
cd "$(dirname "$0")/.."

bash infra/provision.sh
pnpm install --frozen-lockfile --reporter=silent
# The compiled service (tsc -b is incremental: an up-to-date build takes a few seconds).
pnpm --silent build

# Settings from .env (provisioning writes the images it chose there, and a bootstrap key; see
# .env.example), then .berth/images.env for older checkouts; variables set in the environment win.
for file in .env .berth/images.env; do
  [[ -f "$file" ]] || continue
  while IFS='=' read -r key value; do
    [[ "$key" =~ ^[A-Z_]+$ ]] || continue
    [[ -n "${!key:-}" ]] || export "$key=$value"
  done < "$file"
done
echo "up: clients authenticate with BERTH_BOOTSTRAP_API_KEY (kept in .env unless set)"

# node runs the compiled service itself (not through pnpm), so SIGTERM reaches it and its exit code
# is ours. `pnpm dev` runs the sources with tsx instead, restarting on every change.
exec node --enable-source-maps services/api/dist/main.js
