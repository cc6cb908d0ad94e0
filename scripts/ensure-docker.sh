#!/usr/bin/env bash
# Makes sure a Docker engine answers. On a fresh Debian machine, as root, it installs
# Debian's docker.io and starts dockerd; anywhere else it only says what is missing.
set -euo pipefail

if docker info >/dev/null 2>&1; then exit 0; fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-docker: no Docker engine runs, and I can only install one as root on Debian (apt-get install docker.io)." >&2
    exit 1
  fi
  echo "ensure-docker: installing Debian's docker.io" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io iproute2 >/dev/null
fi

if [ "$(id -u)" != 0 ]; then
  echo "ensure-docker: dockerd is installed but not running; start it as root (dockerd &)." >&2
  exit 1
fi
echo "ensure-docker: starting dockerd" >&2
mkdir -p /var/log
nohup dockerd >/var/log/hangar-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
echo "ensure-docker: dockerd did not answer within 60 s; see /var/log/hangar-dockerd.log" >&2
tail -n 20 /var/log/hangar-dockerd.log >&2 || true
exit 1
