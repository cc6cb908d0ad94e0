#!/usr/bin/env bash
# Builds hangar/netns: the host's own `ip` and `nft` and the libraries they link, imported
# as an image (no registry needed). Hangar runs it for a moment with NET_ADMIN inside a
# sandbox's network namespace (NetworkMode container:<id>) to install the route to the
# sidecar and the sidecar's redirect rules; nothing of it stays running.
set -euo pipefail

tag="${1:-hangar/netns:local}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{usr/sbin,etc,tmp,lib64,proc,sys,dev}
chmod 1777 "$root/tmp"

for tool in ip nft; do
  bin="$(PATH="/usr/sbin:/sbin:$PATH" command -v "$tool")" || { echo "build-netns.sh: $tool is not installed on this host (Debian: apt-get install iproute2 nftables)" >&2; exit 2; }
  cp -L "$bin" "$root/usr/sbin/$tool"
  # Every shared library it links, at the same path, plus the dynamic loader.
  ldd "$bin" | awk '/=> \// { print $3 } /^[ \t]*\// { print $1 }' | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done

cat > "$root/etc/passwd" <<'PW'
root:x:0:0:root:/root:/sbin/nologin
PW
echo "root:x:0:" > "$root/etc/group"

versions="$("$root/usr/sbin/nft" --version 2>/dev/null | head -1 | tr -c 'a-zA-Z0-9.\n' '_' || true)"
tar -C "$root" -c . | docker import \
  --change "ENV PATH=/usr/sbin" \
  --change "LABEL hangar.managed=true hangar.role=image hangar.server=shared hangar.run=shared hangar.netns-tools=$versions" \
  --change "USER 0:0" \
  - "$tag" >/dev/null
echo "$tag $(docker image inspect --format '{{.Id}}' "$tag")"
