#!/usr/bin/env bash
# setup.sh - install what building and testing Vamos needs (Debian 12).
# Installs only the packages that are missing; uses sudo when not root.
# --test: also what only the test suite needs (valgrind, which runs a
# built translator; pkgconf, for the install test; python3, requests and
# curl, the clients of the serve test; gettext, msgfmt for vamos po; GNU
# parallel, which drives translators in the parallel test).
set -euo pipefail
packages=(gcc make cmake flex bison libxxhash-dev libcriterion-dev llvm-19-dev libmicrohttpd-dev
          libopenmpi-dev openmpi-bin)
[ "${1:-}" = --test ] && packages+=(valgrind pkgconf python3 python3-requests curl gettext parallel)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all build dependencies are installed"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
