#!/usr/bin/env bash
# The provisioning's install decisions and venv creation, checked in a fresh Debian 12
# root made by debootstrap (a chroot): python3 without python3-venv, nothing else, as on
# a newcomer's host. It fails when a decision misses a package, a decided package does
# not install, a non-root user is not told what to install, venv creation without
# ensurepip is not caught, or a half-made venv is not made again. (Starting the engine
# and the services is exercised on the host itself, by scripts/test.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap and chroot)" >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
root=$(mktemp -d /var/tmp/fresh-debian.XXXXXX)
chmod 755 "$root"  # mktemp makes it 0700: a non-root user could not run anything
cleanup() { umount "$root/proc" 2>/dev/null || true; rm -rf "$root"; }
trap cleanup EXIT
log=$(mktemp)
if ! debootstrap --variant=minbase --include=python3 bookworm "$root" >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "debootstrap failed" >&2
  exit 1
fi
rm -f "$log"
mkdir -p "$root/check/scripts/lib"
cp scripts/lib/provision.sh "$root/check/scripts/lib/"
cp /etc/resolv.conf "$root/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"  # no service starts in here
chmod +x "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  chroot "$root" /bin/bash -euo pipefail -c '
cd /check
. scripts/lib/provision.sh
fail() { echo "FAIL: $*" >&2; exit 1; }
decided=$(needs_packages test)
for package in docker.io busybox-static python3-venv docker-compose postgresql haproxy debootstrap \
    prometheus chromium chromium-driver; do
  grep -qx "$package" <<<"$decided" || fail "a fresh Debian needs $package; the decisions missed it"
done
grep -qx postgresql <<<"$(needs_packages run)" && fail "the run command must not install PostgreSQL"
told=$(su nobody -s /bin/bash -c "cd /check && . scripts/lib/provision.sh && install_packages run" 2>&1) \
  && fail "a non-root user was not stopped"
grep -q "apt-get install -y docker.io busybox-static python3-venv" <<<"$told" \
  || fail "a non-root user was not told what to install: $told"
python3 -m venv /tmp/without >/dev/null 2>&1 && fail "python3 -m venv worked without python3-venv"
( make_venv /tmp/refused ) 2>/dev/null && fail "make_venv did not refuse without ensurepip"
echo "ok: without python3-venv the decisions include it, a non-root user is told what to run"
install_packages test
left=$(needs_packages test)
[ -z "$left" ] || fail "still needed after installing: $left"
make_venv /check/.venv
/check/.venv/bin/python -m pip --version >/dev/null
rm -rf /check/.venv/bin/pip* /check/.venv/lib/python3*/site-packages/pip
grep -q "half-made" <<<"$(make_venv /check/.venv)" || fail "a half-made venv was not detected"
/check/.venv/bin/python -m pip --version >/dev/null || fail "the venv was not made again"
echo "ok: every decided package installs on Debian 12; a half-made venv is made again"
'
