#!/usr/bin/env python3
"""mpi_train_bench.py - data-parallel training against one process, on one
machine: `vamos train` of a model for one epoch on a slice of the corpus,
as 1 process x 2 threads at --batch-tokens 2B (its default 2 lanes: the
batch cut in two halves run side by side; and 1 lane: every kernel split
between the threads) and as `mpirun -np 2` ranks x 1 thread at B (the
same steps), in turn, --rounds times.

    /usr/bin/python3 tests/bench/mpi_train_bench.py [--rounds 3] [--pairs 6000]
        [--batch 4096] [--model models/en-es.vam] [--vamos build/vamos]

Prints the target tokens/s of each run (vamos train's own figure for the
epoch: all ranks' tokens over the time since the first step), the medians,
their ratio, and the allreduce's share of the time the ranks report."""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import cpu_name  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--pairs", type=int, default=6000)
ap.add_argument("--batch", type=int, default=4096, help="the global batch in tokens")
ap.add_argument("--model", default="models/en-es.vam")
ap.add_argument("--data", default="../shared/data/en-es/train.tsv")
ap.add_argument("--vamos", default="build/vamos")
a = ap.parse_args()

tmp = tempfile.mkdtemp(prefix="vamos-mpibench-")
with open(a.data, encoding="utf-8") as f:
    lines = f.readlines()
step = max(1, len(lines) // a.pairs)           # spread over the corpus, not its first program
with open(os.path.join(tmp, "train.tsv"), "w", encoding="utf-8") as f:
    f.writelines(lines[::step][:a.pairs])
with open(os.path.join(tmp, "dev.tsv"), "w", encoding="utf-8") as f:
    f.writelines(lines[1::step][:40])
mpirun = ["mpirun", "--oversubscribe", "-np", "2"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])


def run(ranks, lanes=2):
    args = [a.vamos, "train", a.model, "--data", os.path.join(tmp, "train.tsv"), "--dev",
            os.path.join(tmp, "dev.tsv"), "-o", os.path.join(tmp, "w%d.safetensors" % ranks), "--epochs", "1",
            "--batch-tokens", str(a.batch // ranks)]
    cmd = mpirun + args if ranks > 1 else args + ["--threads", "2", "--lanes", str(lanes)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    out = p.stdout + p.stderr
    if p.returncode:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), out[-2000:]))
    tps = re.findall(r"batch \d+/\d+ .*? ([0-9.]+) tok/s", out)
    share = re.search(r"allreduce of the gradients \(([0-9.]+) MB\): ([0-9.]+) ms per step, ([0-9.]+)% of the time; "
                      r"waiting for the slowest rank: ([0-9.]+) ms per step, ([0-9.]+)%", out)
    return float(tps[-1]), share


print("# vamos train, 1 process x 2 threads (2 lanes; 1 lane) at --batch-tokens %d against mpirun -np 2 x 1 "
      "thread at %d"
      % (a.batch, a.batch // 2))
print("# %s; %s; %d pairs, 1 epoch; %s" % (a.model, cpu_name(), a.pairs, time.strftime("%Y-%m-%d")))
one, one1, two, shares, waits = [], [], [], [], []
for r in range(a.rounds):
    t1, _ = run(1)
    t11, _ = run(1, 1)
    t2, s = run(2)
    one.append(t1), one1.append(t11), two.append(t2)
    if s:
        shares.append(float(s.group(3)))
        waits.append(float(s.group(5)))
    print("round %d: 1 process %.0f tok/s (1 lane: %.0f), 2 ranks %.0f tok/s (%.2fx)%s" %
          (r + 1, t1, t11, t2, t2 / t1, ", allreduce of %s MB %s ms/step (%s%% of the time), waiting for the slower "
           "rank %s ms/step (%s%%)" % s.groups() if s else ""))
    sys.stdout.flush()
m1, m11, m2 = statistics.median(one), statistics.median(one1), statistics.median(two)
print("median: 1 process x 2 threads %.0f tok/s (1 lane: %.0f), 2 ranks x 1 thread %.0f tok/s: %.2fx; "
      "allreduce %.1f%% of the time, waiting %.1f%%" % (m1, m11, m2, m2 / m1, statistics.median(shares) if shares else
                                                       float("nan"), statistics.median(waits) if waits else float("nan")))
