#!/usr/bin/env bash
# test_mpi_train.sh VAMOS: data-parallel training, in one process (--lanes)
# and under mpirun (Open MPI).
#   - one process cutting each batch into two lanes trains the weights of
#     one process with one lane, within float summation-order tolerance;
#   - two ranks at --batch-tokens B train the weights, Adam moments and loss
#     curve of one process at 2B, within float summation-order tolerance;
#   - a checkpoint resumes under another number of ranks, both ways;
#   - rank 0 alone prints the log, and its progress line gives the world size;
#   - a killed rank ends the run (no hang) with a message, and the last
#     checkpoint still loads and resumes.
# A vamos built without MPI must refuse to run under mpirun (N copies of one
# run would each write the same files): that alone is checked then.
set -euo pipefail
vamos=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/vamos-mpi-XXXXXX)
trap 'pkill -9 -f "$dir" 2>/dev/null || true; rm -rf "$dir"' EXIT
cd "$dir"
mpi=(mpirun --oversubscribe -np 2)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
fail() { echo "FAIL: $*"; exit 1; }

# no dropout: dropout's masks are drawn per rank, so they would differ
cat > tiny.vam <<'VAM'
model tiny {
  vocab src = file "tiny.src.bpe"
  vocab tgt = file "tiny.tgt.bpe"
  encoder(x: tokens<src>[b, n]) {
    h = embed(x, 16) + position(n, 16)
    return encoder_layer(h, heads: 2, hidden: 32) as enc
  }
  decoder(y: tokens<tgt>[b, m], memory: [b, n, 16]) {
    h = embed(y, 16) + position(m, 16)
    h = decoder_layer(h, memory, heads: 2, hidden: 32) as dec
    return linear(h, len(tgt)) as out
  }
}
VAM
python3 - <<'PY'
verbs = [("open", "abrir"), ("close", "cerrar"), ("save", "guardar"), ("print", "imprimir"), ("delete", "borrar")]
objs = [("the file", "el archivo"), ("the window", "la ventana"), ("the folder", "la carpeta"),
        ("the page", "la página"), ("all files", "todos los archivos"),
        ("the new document now", "el documento nuevo ahora")]
with open("tiny.tsv", "w") as f:
    for a, b in verbs:
        for c, d in objs:
            f.write(f"{a} {c}\t{b} {d}\n")
PY
"$vamos" vocab --data tiny.tsv -o tiny --size 60 >/dev/null 2>&1
common=(tiny.vam --data tiny.tsv --dev tiny.tsv --warmup 4 --seed 5)
close() { python3 "$here/st_close.py" "$1" "$2" --skip .k.b --tol 1e-5 || fail "$1 and $2 differ"; }

echo "== one lane against two (in one process, with one thread and with two)"
"$vamos" train "${common[@]}" -o l1.safetensors --batch-tokens 80 --epochs 3 --lanes 1 2>l1.log || fail "$(cat l1.log)"
"$vamos" train "${common[@]}" -o l2.safetensors --batch-tokens 80 --epochs 3 --lanes 2 --threads 2 2>l2.log \
  || fail "$(cat l2.log)"
"$vamos" train "${common[@]}" -o l2s.safetensors --batch-tokens 80 --epochs 3 --lanes 2 --threads 1 2>l2s.log \
  || fail "$(cat l2s.log)"
close l1.safetensors l2.safetensors
close l1.safetensors.ckpt l2.safetensors.ckpt
cmp l2.safetensors l2s.safetensors || fail "two lanes on one thread differ from two lanes on two"

if "$vamos" --version | grep -q "built without MPI"; then
  echo "== built without MPI: refused under mpirun"
  status=0
  timeout 120 "${mpi[@]}" "$vamos" train "${common[@]}" -o x.safetensors >x.log 2>&1 || status=$?
  cat x.log
  [ "$status" -ne 0 ] && [ "$status" -ne 124 ] || fail "exit status $status"
  grep -q "built without MPI" x.log || fail "no message"
  [ ! -e x.safetensors ] || fail "wrote weights"
  echo "PASS"
  exit 0
fi

echo "== one process (one lane) at 80 tokens against two ranks at 40"
"$vamos" train "${common[@]}" -o one.safetensors --batch-tokens 80 --epochs 3 --lanes 1 2>one.log \
  || fail "$(cat one.log)"
timeout 300 "${mpi[@]}" "$vamos" train "${common[@]}" -o two.safetensors --batch-tokens 40 --epochs 3 \
  >two.log 2>&1 || fail "mpirun: $(cat two.log)"
cat two.log
close one.safetensors two.safetensors
close one.safetensors.ckpt two.safetensors.ckpt      # Adam's moments and the loss curve too
close l2.safetensors two.safetensors                 # two lanes: the same parts as two ranks
grep -q "(2 ranks)" two.log || fail "no world size in the progress line"
[ "$(grep -c '^epoch 1: train loss' two.log)" -eq 1 ] || fail "more than one rank wrote the log"
grep -q "^allreduce of the gradients" two.log || fail "no allreduce figure"
[ ! -e two.safetensors.init ] || fail "left the initial weights behind"

echo "== a two-rank checkpoint resumed by one process, and the other way"
timeout 300 "${mpi[@]}" "$vamos" train "${common[@]}" -o a.safetensors --batch-tokens 40 --epochs 2 \
  >a.log 2>&1 || fail "mpirun: $(cat a.log)"
"$vamos" train "${common[@]}" -o a.safetensors --batch-tokens 80 --epochs 3 --resume a.safetensors.ckpt 2>>a.log \
  || fail "$(cat a.log)"
close one.safetensors a.safetensors
"$vamos" train "${common[@]}" -o b.safetensors --batch-tokens 80 --epochs 2 2>b.log || fail "$(cat b.log)"
timeout 300 "${mpi[@]}" "$vamos" train "${common[@]}" -o b.safetensors --batch-tokens 40 --epochs 3 \
  --resume b.safetensors.ckpt >>b.log 2>&1 || fail "mpirun: $(cat b.log)"
close one.safetensors b.safetensors

echo "== a rank killed mid-run"
timeout 300 "${mpi[@]}" "$vamos" train "${common[@]}" -o k.safetensors --batch-tokens 40 --epochs 255 \
  >k.log 2>&1 &
run=$!
for _ in $(seq 600); do [ -e k.safetensors.ckpt ] && break; sleep 0.1; done
[ -e k.safetensors.ckpt ] || fail "no checkpoint after 60 s: $(cat k.log)"
sleep 0.3
killed=
for p in $(pgrep -f "vamos train .*-o k.safetensors" || true); do
  if tr '\0' '\n' </proc/"$p"/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then
    kill -9 "$p" && killed=$p
  fi
done
[ -n "$killed" ] || fail "rank 1 not found (finished already?): $(cat k.log)"
status=0
wait "$run" || status=$?
cat k.log | grep -v "^epoch" || true
[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || fail "mpirun exited with $status after a rank was killed"
grep -q "stopped by a signal" k.log || fail "rank 0 said nothing"
! pgrep -f "vamos train .*-o k.safetensors" >/dev/null || fail "ranks left running"
python3 "$here/st_close.py" k.safetensors.ckpt k.safetensors.ckpt >/dev/null || fail "the checkpoint is not whole"
"$vamos" train "${common[@]}" -o k.safetensors --batch-tokens 80 --epochs 255 --time 0.0001 \
  --resume k.safetensors.ckpt 2>>k.log || fail "the checkpoint does not resume: $(tail -3 k.log)"
echo "PASS"
