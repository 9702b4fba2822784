#!/bin/sh
# Installs the Debian packages swarm-medic needs to build, run and test,
# only those missing. Uses sudo when not root. Safe to run repeatedly.
set -eu
pkgs="build-essential pkg-config libnats-dev nats-server protobuf-c-compiler \
libprotobuf-c-dev liblmdb-dev lmdb-utils check libsubunit-dev libjansson-dev libisal-dev valgrind \
libmicrohttpd-dev libsystemd-dev systemd python3-yaml"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
