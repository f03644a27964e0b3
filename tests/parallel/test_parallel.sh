#!/usr/bin/env bash
# test_parallel.sh VAMOS - a translator as a line filter under GNU parallel.
#
# The contract (README, "Translating at scale"): one output line per input
# line, in order; the output flushed whenever the input runs dry; the same
# bytes whatever --threads, --batch or where the input is cut into blocks;
# exit 0, or 1 with a message on stderr; warnings on stderr only.
#
# 1. statquest (a tiny model, so that 300,000 lines take seconds): the
#    whole input, then `parallel --pipe -k` with 1 MB and 64 kB blocks,
#    byte-identical.
# 2. en-es on 2,000 dev-ood-like lines: --threads 1 and 2, --batch 1, 16
#    and 64, and two parallel jobs of one thread each, all byte-identical.
set -euo pipefail
vamos=${1:-build/vamos}
tmp=$(mktemp -d /tmp/vamos-parallel.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$vamos" build models/statquest.vam -w models/statquest.safetensors -o "$tmp/sq" 2>/dev/null
# 300,000 lines of 0 to 6 words of statquest's vocabulary (and an unknown word)
awk 'BEGIN { srand(7); split("let'"'"'s to go <eos> dance", w, " ");
             for (i = 0; i < 300000; i++) { n = int(rand() * 7); s = "";
               for (k = 0; k < n; k++) s = s (k ? " " : "") w[1 + int(rand() * 5)]; print s } }' > "$tmp/sq.in"
"$tmp/sq" < "$tmp/sq.in" > "$tmp/sq.one" 2> "$tmp/sq.err" || fail "statquest exit $?"
[ "$(wc -l < "$tmp/sq.one")" -eq 300000 ] || fail "statquest: $(wc -l < "$tmp/sq.one") lines out for 300000 in"
for block in 1M 64k; do
  parallel --will-cite --pipe -k --block "$block" "$tmp/sq" < "$tmp/sq.in" > "$tmp/sq.par" 2>/dev/null
  cmp -s "$tmp/sq.one" "$tmp/sq.par" || fail "statquest: parallel --will-cite --pipe -k --block $block differs from one process"
done
"$tmp/sq" --threads 1 --batch 64 < "$tmp/sq.in" | cmp -s "$tmp/sq.one" - || fail "statquest: --threads 1 --batch 64 differs"

"$vamos" build models/en-es.vam -w models/en-es.safetensors -o "$tmp/enes" 2>/dev/null
data=../shared/data/en-es/dev-ood.tsv
if [ -f "$data" ]; then cut -f1 "$data"; else printf 'Open file\nShow hidden files\nSave the document\n'; fi \
  > "$tmp/base.in"
# 2,000 lines: the sources again and again, with empty lines and a long one
awk -v n=2000 '{ l[NR] = $0 } END { for (i = 0; i < n; i++) { if (i % 97 == 0) print ""; else print l[1 + i % NR] } }' \
  "$tmp/base.in" > "$tmp/en.in"
"$tmp/enes" --threads 2 < "$tmp/en.in" > "$tmp/en.ref" 2>/dev/null
[ "$(wc -l < "$tmp/en.ref")" -eq 2000 ] || fail "en-es: $(wc -l < "$tmp/en.ref") lines out for 2000 in"
for opts in "--threads 1" "--batch 1" "--batch 64" "--threads 1 --batch 16 --window 1"; do
  "$tmp/enes" $opts < "$tmp/en.in" 2>/dev/null | cmp -s "$tmp/en.ref" - || fail "en-es: $opts differs from --threads 2"
done
parallel --will-cite --pipe -k -j2 --block 20k "$tmp/enes" --threads 1 < "$tmp/en.in" 2>/dev/null | cmp -s "$tmp/en.ref" - ||
  fail "en-es: two parallel jobs of one thread differ from one process"
# beam search in lanes (2 threads, 25 batches of 4: each thread takes whole batches) and without
head -100 "$tmp/en.in" > "$tmp/en100.in"
"$tmp/enes" --threads 1 --beam 4 < "$tmp/en100.in" > "$tmp/beam.ref" 2>/dev/null
"$tmp/enes" --threads 2 --beam 4 --batch 4 < "$tmp/en100.in" 2>/dev/null | cmp -s "$tmp/beam.ref" - ||
  fail "en-es: --beam 4 in lanes differs from one thread"

# warnings go to stderr only; the exit status says what happened
{ echo "to go"; head -c 1100000 /dev/zero | tr '\0' a; printf '\nto go\n'; } | "$tmp/sq" > "$tmp/out" 2> "$tmp/err"
[ "$(cat "$tmp/out")" = "$(printf 'ir\n\nir')" ] || fail "a cut line: stdout is $(head -c 80 "$tmp/out")"
grep -q "warning: line 2" "$tmp/err" || fail "a cut line: no warning on stderr"
if echo go | "$tmp/sq" > /dev/full 2>/dev/null; then fail "a full disk: exit 0"; fi
echo "test_parallel: all passed"
