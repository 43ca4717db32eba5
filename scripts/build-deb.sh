#!/usr/bin/env bash
# Builds lvsd_VERSION_ARCH.deb from this tree with dpkg-deb (no debhelper): the files `npm pack`
# ships (package.json "files") under /usr/lib/lvsd, the AF_PACKET addon built for this machine,
# the production npm dependencies exactly as locked, /usr/bin/lvsd, the systemd unit, and a default
# /etc/lvsd/lvsd.yaml (a conffile). Maintainer scripts are deploy/debian/{postinst,prerm,postrm}.
# Usage: scripts/build-deb.sh [OUTDIR]   (default: dist/); prints the .deb's path.
# Needs the tree built (`npm run build`, as scripts/setup.sh does) and its node_modules (npm ci).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)
cd "$root"

addon=native/afpacket/build/Release/afpacket.node
for f in dist/src/cli/main.js "$addon" node_modules/.package-lock.json; do
  [ -e "$f" ] || { echo "build-deb: $f is missing: run \`npm ci && npm run build\` first" >&2; exit 1; }
done

version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/lvsd_${version}_${arch}
lib=$stage/usr/lib/lvsd

# 1. What npm would publish, unpacked (dist/ is already built: no prepack here).
npm pack --ignore-scripts --silent --pack-destination "$work" >/dev/null
mkdir -p "$lib"
tar -xzf "$work/lvsd-$version.tgz" -C "$lib" --strip-components=1
# 2. The addon built on this machine (the npm install script would build it on the target).
install -D -m 0644 "$addon" "$lib/$addon"
# 3. Production dependencies as installed from package-lock.json (`npm ls` lists their folders;
#    each is copied without its nested node_modules, which are listed on their own).
npm ls --omit=dev --all --parseable | tail -n +2 | while read -r dir; do
  rel=node_modules/${dir#*/node_modules/}
  mkdir -p "$lib/$rel"
  tar -C "$dir" --exclude=./node_modules -cf - . | tar -C "$lib/$rel" -xf -
done
# 4. Entry point, unit, default configuration, documentation.
mkdir -p "$stage/usr/bin" "$stage/etc/lvsd" "$stage/lib/systemd/system" "$stage/usr/share/doc/lvsd"
ln -s ../lib/lvsd/bin/lvsd "$stage/usr/bin/lvsd"
install -m 0644 deploy/lvsd.service "$stage/lib/systemd/system/lvsd.service"
install -m 0644 deploy/lvsd.yaml "$stage/etc/lvsd/lvsd.yaml"
for d in README.md docs/install.md; do [ -e "$d" ] && install -m 0644 "$d" "$stage/usr/share/doc/lvsd/"; done

# Run-time needs only: node, adduser for postinst, and the C library the addon links against
# (the highest GLIBC_ symbol version it uses). No iproute2/ipvsadm: lvsd speaks netlink itself.
glibc=$(objdump -T "$addon" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
mkdir -p "$stage/DEBIAN"
cat >"$stage/DEBIAN/control" <<EOF
Package: lvsd
Version: $version
Architecture: $arch
Maintainer: lvsd developers <lvsd@localhost>
Section: net
Priority: optional
Depends: nodejs (>= 20), adduser, libc6 (>= $glibc)
Suggests: ipvsadm, iproute2
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Homepage: https://github.com/lvsd/lvsd
Description: HA orchestrator for Linux Virtual Server director pairs
 lvsd runs on two IPVS directors: a VRRP election (wire-compatible with
 keepalived) moves the virtual IPs, health checks add and remove real servers,
 the kernel's IPVS table is kept equal to the declared one over generic netlink,
 and connections are synchronised to the backup so they survive a failover.
EOF
echo /etc/lvsd/lvsd.yaml >"$stage/DEBIAN/conffiles"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$stage/DEBIAN/"

deb=$out/lvsd_${version}_${arch}.deb
dpkg-deb --build --root-owner-group -Zgzip "$stage" "$deb" >/dev/null
echo "$deb"
