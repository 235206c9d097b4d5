#!/usr/bin/env bash
# Make a Docker engine and the sandbox base image available, for `make test` and for users
# without an image registry. Idempotent: with an engine running and the image present it
# does nothing. It never fails the caller: when it cannot (not root, no apt-get) it says why,
# and the Docker tests then skip with that reason.
#
#   scripts/docker_engine.sh            # start dockerd if needed, build the base image
#   EXECUTOR_BASE_IMAGE=name:tag scripts/docker_engine.sh
set -uo pipefail
IMAGE="${EXECUTOR_BASE_IMAGE:-executor-base:bookworm}"
# python-is-python3: manifests say `python`; numpy: the test environment needs it.
PACKAGES="python3,python-is-python3,python3-numpy,ca-certificates"
LOG="${TMPDIR:-/tmp}/executor-dockerd.log"

say() { echo "docker_engine: $*" >&2; }

engine_up() { docker info >/dev/null 2>&1; }

install_packages() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "cannot install $* (needs root and apt-get); Docker tests will skip"
    return 1
  fi
  # A fresh machine may have stale or no package lists: update once, then retry.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >"${LOG}.apt" 2>&1 \
    || { apt-get update -q >>"${LOG}.apt" 2>&1 \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"${LOG}.apt" 2>&1; } \
    || { say "apt-get install $* failed (see ${LOG}.apt)"; return 1; }
}

if ! engine_up; then
  if ! command -v dockerd >/dev/null; then
    install_packages docker.io || exit 0
  fi
  if [ "$(id -u)" != 0 ]; then
    say "no engine running and only root can start dockerd; Docker tests will skip"
    exit 0
  fi
  say "starting dockerd (log: $LOG)"
  nohup dockerd >"$LOG" 2>&1 &
  for _ in $(seq 60); do engine_up && break; sleep 0.5; done
  engine_up || { say "dockerd did not come up (see $LOG); Docker tests will skip"; exit 0; }
fi

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  command -v mmdebstrap >/dev/null || install_packages mmdebstrap || exit 0
  tar="$(mktemp -d)/base.tar"
  say "building $IMAGE with mmdebstrap (about a minute)"
  if mmdebstrap --quiet --variant=apt --include="$PACKAGES" bookworm "$tar" >"${LOG}.mmdebstrap" 2>&1 \
     && docker import "$tar" "$IMAGE" >/dev/null; then
    say "built $IMAGE"
  else
    say "could not build $IMAGE (see ${LOG}.mmdebstrap); Docker tests will skip"
  fi
  rm -rf "$(dirname "$tar")"
fi
exit 0
