#!/usr/bin/env bash
# Makes sure a Chromium is installed for the GraphiQL browser test (Debian's package), and
# prints its path. Used by .ci/run; safe to run by hand.
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v chromium >/dev/null; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
command -v chromium
