#!/usr/bin/env bash
# System packages the suite uses beyond Python: bubblewrap (the local sandbox's isolation),
# a Docker engine and its base image (scripts/docker_engine.sh) and Debian's chromium, which
# opens `executor report` pages headless. Idempotent; where it cannot install (not root, no
# apt-get) it says why, and the tests that need the missing piece skip with that reason.
set -uo pipefail
here="$(dirname "$0")"
apt_install() {  # PACKAGE WHAT-SKIPS: install as root with apt-get, else say what skips
  local log="${TMPDIR:-/tmp}/executor-$1-apt.log"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >"$log" 2>&1 \
      || { apt-get update -q >>"$log" 2>&1 \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >>"$log" 2>&1; } \
      || echo "test_deps: could not install $1 (see $log); $2" >&2
  else
    echo "test_deps: $1 missing and cannot be installed here; $2" >&2
  fi
}
command -v bwrap >/dev/null \
  || apt_install bubblewrap "the local sandbox runs unisolated and its isolation tests skip"
"$here/docker_engine.sh"
command -v chromium >/dev/null || apt_install chromium "report tests will skip"
exit 0
