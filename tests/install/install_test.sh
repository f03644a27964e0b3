#!/usr/bin/env bash
# install_test.sh BUILD_DIR - `cmake --install` into a scratch prefix, then
# use only what it installed: its vamos builds two models as libraries, and
# a program compiled with `pkg-config --cflags --libs vamos` links both.
set -euo pipefail
build=$1
prefix=$(mktemp -d /tmp/vamos-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
test -x "$prefix/bin/vamos"
for f in include/vamos/vamos.h lib/libvamosrt.a lib/libvamosmain.a; do test -f "$prefix/$f" || { echo "not installed: $f"; exit 1; }; done
pc=$(find "$prefix" -name vamos.pc)
export PKG_CONFIG_PATH=$(dirname "$pc")
cd "$prefix"   # nothing of the source or build tree is reachable from here by accident
"$prefix/bin/vamos" build "$OLDPWD/models/statquest.vam" -w "$OLDPWD/models/statquest.safetensors" --lib --prefix sq -o sq.a 2>/dev/null
"$prefix/bin/vamos" build "$OLDPWD/models/en-es.vam" -w "$OLDPWD/models/en-es.safetensors" --lib -o enes.a 2>/dev/null
cc -Wall -Werror "$OLDPWD/tests/unit/two_models.c" sq.a enes.a $(pkg-config --cflags --libs vamos) -o two
out=$(./two "Let's go" "Open file" 2>/dev/null)
echo "$out"
[ "$(echo "$out" | sed -n 1p)" = "$(printf 'statquest\tvamos')" ]
[ "$(echo "$out" | sed -n 4p)" = "$(printf 'en_es\tAbrir archivo')" ]
echo "install_test: ok"
