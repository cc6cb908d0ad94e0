#!/usr/bin/env bash
# The README's first command: set-up plus the demo, from a fresh clone.
#   - a Docker engine (installs Debian's docker.io and starts dockerd when none runs and we are root)
#   - dependencies (npm ci), the build, the images (hangar run builds what is missing)
#   - then sandboxes @modelcontextprotocol/server-everything and shows one allowed and one blocked fetch
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-docker.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund
fi
echo "== npm run build"
npm run build --silent
node --import tsx scripts/demo.ts
