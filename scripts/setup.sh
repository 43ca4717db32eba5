#!/usr/bin/env bash
# Installs everything lvsd and its tests need on a fresh Debian 12 machine, then builds.
# Idempotent: Debian packages are installed only when missing. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the real peers and tools the tests use (keepalived, ipvsadm, tshark, arping),
# the user-mode-linux kernel that provides a real IPVS kernel (the lab) and uml_switch (uml-utilities:
# the private segment between the guests of a lab pair, unix sockets only), namespace tooling, the
# toolchain for the AF_PACKET addon, prometheus (promtool and a server that evaluates the alert
# rules in deploy/prometheus against a real daemon), and docker-compose (validates
# docker-compose.yml; no engine).
PKGS=(kmod iproute2 iputils-ping iputils-arping nftables keepalived ipvsadm user-mode-linux uml-utilities tshark strace
      dnsutils openssl procps python3 make g++ curl prometheus docker-compose)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages exactly as locked; netlink ships a prebuilt binary, the own addon (native/afpacket) is built below.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build
echo "setup: done"
