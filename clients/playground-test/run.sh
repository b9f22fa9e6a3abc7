#!/usr/bin/env bash
# The playground's browser test: installs headless Chromium (Debian's package) and
# playwright-core when missing, builds the two binaries it starts, and runs it.
# Screenshots of every step go to target/playground/. Used by `just playground-test`
# and `.ci/run`.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "Chromium is missing: installing Debian's chromium package"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
"${CHROMIUM:-/usr/bin/chromium}" --version 2>/dev/null || true
(cd ../.. && cargo build -q -p api-actix -p fake-llm)
if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi
timeout 600 npm test
