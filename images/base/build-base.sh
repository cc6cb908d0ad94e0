#!/usr/bin/env bash
# Builds hangar/base: the host's own Linux node binary, the libraries it links, CA
# certificates and a non-root user, imported as an image (no registry needed).
# Users with a registry can skip this and pass --build-arg BASE=node:22-slim instead.
set -euo pipefail

tag="${1:-hangar/base:local}"
node_bin="$(command -v node)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{usr/local/bin,etc/ssl/certs,tmp,home/hangar,app,lib64,proc,sys,dev}
chmod 1777 "$root/tmp"

cp "$node_bin" "$root/usr/local/bin/node"
# Every shared library node links, at the same path, plus the dynamic loader.
ldd "$node_bin" | awk '/=> \// { print $3 } /^[ \t]*\// { print $1 }' | sort -u | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"

cat > "$root/etc/passwd" <<'PW'
root:x:0:0:root:/root:/sbin/nologin
hangar:x:10001:10001:hangar:/home/hangar:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
PW
cat > "$root/etc/group" <<'GR'
root:x:0:
hangar:x:10001:
nogroup:x:65534:
GR
echo "hosts: files dns" > "$root/etc/nsswitch.conf"
chown -R 10001:10001 "$root/home/hangar" "$root/app"

node_version="$("$node_bin" --version)"
tar -C "$root" -c . | docker import \
  --change "ENV PATH=/usr/local/bin:/usr/bin:/bin" \
  --change "ENV NODE_EXTRA_CA_CERTS=" \
  --change "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" \
  --change "LABEL hangar.managed=true hangar.role=base hangar.node=$node_version" \
  --change "USER 10001:10001" \
  --change "WORKDIR /app" \
  --change 'ENTRYPOINT ["node"]' \
  - "$tag" >/dev/null
echo "$tag $(docker image inspect --format '{{.Id}}' "$tag")"
