#!/usr/bin/env bash
# update_expected.sh - regenerate tests/lang/bad/*.err from the current
# compiler. Run after changing a message, then READ the diff (git diff
# tests/lang/bad) before committing: the .err files are the specification.
set -euo pipefail
cd "$(dirname "$0")/../.."
vamos=${VAMOS:-build/vamos}
for f in tests/lang/bad/*.vam; do
  "$vamos" check "$f" > /dev/null 2> "${f%.vam}.err" && { echo "$f: unexpectedly valid" >&2; exit 1; }
done
echo "updated $(ls tests/lang/bad/*.err | wc -l) expected outputs"
