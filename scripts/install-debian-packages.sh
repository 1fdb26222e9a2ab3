#!/usr/bin/env bash
# Install the Debian packages that the integration tests and benchmarks run as real servers, or
# the ones named: the Makefile names what building the venv needs and what `make up` runs.
#
# usage: scripts/install-debian-packages.sh [PACKAGE...]
#   default: influxdb influxdb-client prometheus prometheus-alertmanager victoria-metrics
#            prometheus-node-exporter libfuse2 chromium strace
#   (libfuse2: the hung-statfs test's FUSE filesystem; chromium: the admin pages' browser tests;
#   strace: the spool tests that check its fsyncs from the kernel's side)
#
# Idempotent: installs only what is missing, and runs `apt-get update` once, only then.
# The packages' maintainer scripts would start their daemons on the default ports
# (8086, 9090, 9093, 9100, 8428); a temporary /usr/sbin/policy-rc.d that exits 101
# ("action forbidden") stops invoke-rc.d from doing so. It is removed again on any exit.
set -euo pipefail

DEFAULT_PACKAGES=(
    influxdb influxdb-client prometheus prometheus-alertmanager victoria-metrics
    prometheus-node-exporter libfuse2 chromium strace
)
POLICY=/usr/sbin/policy-rc.d

say() { printf 'install-debian-packages: %s\n' "$*"; }
die() { printf 'install-debian-packages: error: %s\n' "$*" >&2; exit 1; }

packages=("$@")
[[ ${#packages[@]} -gt 0 ]] || packages=("${DEFAULT_PACKAGES[@]}")

is_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing=()
for package in "${packages[@]}"; do
    if is_installed "$package"; then
        say "already installed: $package"
    else
        missing+=("$package")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    say "nothing to install"
    exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand (Debian 12 packages)"

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "not root and sudo is missing: run as root to install ${missing[*]}"
    # Without a terminal (tests, CI) sudo must fail rather than wait for a password.
    if [[ -t 0 ]]; then SUDO=(sudo); else SUDO=(sudo -n); fi
fi

created_policy=false
cleanup() {
    if [[ $created_policy == true ]]; then
        "${SUDO[@]}" rm -f "$POLICY" && say "removed temporary $POLICY"
    fi
}
trap cleanup EXIT

if [[ -e $POLICY ]]; then
    say "$POLICY exists already; leaving it as it is"
else
    say "writing temporary $POLICY so that package scripts do not start daemons"
    printf '#!/bin/sh\n# Temporary, written by install-debian-packages.sh\nexit 101\n' |
        "${SUDO[@]}" tee "$POLICY" >/dev/null || die "cannot write $POLICY"
    created_policy=true
    "${SUDO[@]}" chmod 755 "$POLICY"
fi

apt_get() {
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 "$@"
}

say "apt-get update (missing: ${missing[*]})"
apt_get update -qq || die "apt-get update failed"
say "installing: ${missing[*]}"
apt_get install -y -qq --no-install-recommends "${missing[@]}" ||
    die "apt-get install failed for: ${missing[*]}"

for package in "${missing[@]}"; do
    is_installed "$package" || die "$package is still not installed after apt-get install"
done
say "installed: ${missing[*]}"
