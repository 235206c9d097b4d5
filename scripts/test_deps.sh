#!/usr/bin/env bash
# System packages the suite uses beyond Python: a Docker engine and its base image
# (scripts/docker_engine.sh) and Debian's chromium, which opens `executor report` pages
# headless. Idempotent; where it cannot install (not root, no apt-get) it says why, and the
# tests that need the missing piece skip with that reason.
set -uo pipefail
here="$(dirname "$0")"
"$here/docker_engine.sh"
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log="${TMPDIR:-/tmp}/executor-chromium-apt.log"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >"$log" 2>&1 \
      || { apt-get update -q >>"$log" 2>&1 \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >>"$log" 2>&1; } \
      || echo "test_deps: could not install chromium (see $log); report tests will skip" >&2
  else
    echo "test_deps: chromium missing and cannot be installed here; report tests will skip" >&2
  fi
fi
exit 0
