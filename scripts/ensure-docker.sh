#!/usr/bin/env bash
# Makes sure a Docker engine answers, with gVisor's runsc registered as a runtime (for
# runtime.isolation: gvisor). On a fresh Debian machine, as root, it installs Debian's
# docker.io and runsc and starts dockerd; anywhere else it only says what is missing.
set -euo pipefail

DAEMON_JSON=${HANGAR_DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}

# Installs runsc (apt) and merges runtimes.runsc into daemon.json, keeping every other key.
# Prints "changed" when the file was rewritten. Without root or apt it only warns: runc
# sandboxes still work, and `hangar run` refuses gvisor with a clear error.
ensure_runsc_config() {
  if [ "$(id -u)" != 0 ]; then
    command -v runsc >/dev/null 2>&1 || echo "ensure-docker: runsc is not installed (isolation: gvisor needs it; apt-get install runsc as root)" >&2
    return 0
  fi
  if ! command -v runsc >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "ensure-docker: runsc is not installed and apt-get is missing; isolation: gvisor will be refused" >&2
      return 0
    fi
    echo "ensure-docker: installing Debian's runsc (gVisor)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null
  fi
  # `ip` and `nft` go into the hangar/netns image (runtime.catchAll: the route and redirect
  # rules installed in a sandbox's namespaces); Debian's iproute2 and nftables.
  if ! PATH="/usr/sbin:/sbin:$PATH" command -v nft >/dev/null 2>&1 || ! PATH="/usr/sbin:/sbin:$PATH" command -v ip >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
      echo "ensure-docker: installing Debian's iproute2 and nftables (for runtime.catchAll)" >&2
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 nftables >/dev/null
    fi
  fi
  local runsc_path
  runsc_path=$(runsc_for_docker)
  mkdir -p "$(dirname "$DAEMON_JSON")"
  # Node is already a prerequisite; it merges without losing keys and says whether it wrote.
  RUNSC_PATH="$runsc_path" DAEMON_JSON="$DAEMON_JSON" node -e '
    const fs = require("node:fs");
    const file = process.env.DAEMON_JSON;
    const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim() : "";
    const current = text === "" ? {} : JSON.parse(text);
    const wanted = { ...current, runtimes: { ...(current.runtimes ?? {}), runsc: { path: process.env.RUNSC_PATH } } };
    if (JSON.stringify(current) === JSON.stringify(wanted)) process.exit(0);
    fs.writeFileSync(file + ".tmp", JSON.stringify(wanted, null, 2) + "\n");
    fs.renameSync(file + ".tmp", file);
    console.error(`ensure-docker: registered runsc (${process.env.RUNSC_PATH}) as a Docker runtime in ${file}`);
    console.log("changed");
  '
}

# runsc releases before 2024-08 decide "am I in the root network namespace?" by whether
# /proc/sys/net/core/rmem_default exists, and kernels since 6.x show that file in every
# namespace: every networked container then fails with "cannot run with network enabled in
# root network namespace". On such a pair, Docker gets a wrapper that runs runsc in a
# private mount namespace with an empty, read-only /proc/sys/net (only that probe reads it;
# the sandbox mounts its own /proc). Prints the path to register.
RUNSC_WRAPPER=/usr/local/libexec/hangar/runsc
runsc_for_docker() {
  local real version_date
  real=$(command -v runsc)
  version_date=$(runsc --version 2>/dev/null | head -n1 | grep -oE '20[0-9]{6}' | head -n1 || true)
  if [ -n "$version_date" ] && [ "$version_date" -lt 20240801 ] \
     && unshare --net test -e /proc/sys/net/core/rmem_default 2>/dev/null; then
    mkdir -p "$(dirname "$RUNSC_WRAPPER")"
    cat >"$RUNSC_WRAPPER.tmp" <<WRAPPER
#!/bin/sh
# Installed by Hangar's scripts/ensure-docker.sh: runsc $version_date misreads every network
# namespace as the root one on this kernel (see there). Everything else is runsc unchanged.
exec unshare --mount --propagation private /bin/sh -c 'mount -t tmpfs -o ro,size=4k hangar-runsc /proc/sys/net && exec "\$0" "\$@"' "$real" "\$@"
WRAPPER
    chmod 755 "$RUNSC_WRAPPER.tmp" && mv "$RUNSC_WRAPPER.tmp" "$RUNSC_WRAPPER"
    echo "$RUNSC_WRAPPER"
  else
    echo "$real"
  fi
}

engine_has_runsc() {
  docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'
}

if docker info >/dev/null 2>&1; then
  changed=$(ensure_runsc_config)
  if [ "$changed" = changed ] || { command -v runsc >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && ! engine_has_runsc; }; then
    # runtimes is one of dockerd's live-reloadable options: SIGHUP re-reads daemon.json
    # without stopping running containers (a restart would kill every live sandbox).
    pid=$(pgrep -xo dockerd || true)
    if [ -n "$pid" ]; then
      kill -HUP "$pid"
      for _ in $(seq 1 20); do engine_has_runsc && break; sleep 0.5; done
    fi
    engine_has_runsc || echo "ensure-docker: dockerd did not pick up runsc from $DAEMON_JSON; restart dockerd to use isolation: gvisor" >&2
  fi
  exit 0
fi

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
ensure_runsc_config >/dev/null
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
