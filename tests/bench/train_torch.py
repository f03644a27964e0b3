"""train_torch.py - one training step of models/en-es.vam in Vamos and in
PyTorch, on the same batch shapes, in the same run.

    /usr/bin/python3 tests/bench/train_torch.py [--reps N] [--rounds R] [--isa avx2] [--also OTHER/train_bench]

The step is forward and backward (the summed label-smoothed cross entropy
and every weight's gradient), no dropout, no optimiser: 64 rows x 32 source
and 32 target tokens. PyTorch runs tests/golden/vamos_torch.py's model
(the same post-norm transformer, written with F.linear, F.layer_norm,
softmax attention) with OMP_WAIT_POLICY=PASSIVE, at 1 and 2 threads; its
best counts. Vamos runs build/tests/bench/train_bench on 2 threads with
2 lanes, as `vamos train` does by default on 2 cores (the batch cut in two
halves run side by side, the gradients summed); its figure with 1 lane
(every kernel split between the threads) is printed beside. The two are
measured in turn, --rounds times, so a ratio holds while the machine's
speed drifts; each line names the CPU and its instruction set. Prints
medians and the ratios, and writes tests/bench/results/train.txt.

Each round also prints the FMA bound: the step's products (train_bench
counts their GFLOP) at the machine's f32 multiply-add peak on 2 cores
(build/tests/bench/bandwidth --fma-only, with the vectors of the code
measured). No code doing these products can take less time, so best
PyTorch / bound is the highest ratio any implementation could reach on
that round, and bound / Vamos how near Vamos's whole step comes to it.

--isa avx2: both sides as on an AVX2-only machine (a Zen 3), on this one:
Vamos's kernels compiled for x86-64-v3 (VAMOS_JIT_CPU), PyTorch with
ATEN_CPU_CAPABILITY=avx2, DNNL_MAX_CPU_ISA=AVX2 and OPENBLAS_CORETYPE=
Haswell; writes results/train-avx2.txt. The cpu line names the kernels
OpenBLAS, PyTorch's BLAS, chose (Debian's 0.3.21 takes its AVX2 ones,
Haswell, even on an AVX-512 Zen 5, so there PyTorch's products are AVX2
code either way).
"""
import argparse
import os
import re
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ISA = argparse.ArgumentParser(add_help=False)
ISA.add_argument("--isa", choices=("native", "avx2"), default="native",
                 help="avx2: both sides restricted to AVX2 code, as on a Zen 3")
AVX2 = ISA.parse_known_args()[0].isa == "avx2"
if AVX2:   # read when torch loads: set before the import
    os.environ.update(ATEN_CPU_CAPABILITY="avx2", DNNL_MAX_CPU_ISA="AVX2", OPENBLAS_CORETYPE="Haswell")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
import vamos_torch as vt  # noqa: E402
from machine import blas_core, cpu_name  # noqa: E402

ROWS, LEN = 64, 32


def en_es_config():
    # models/en-es.vam: one joint vocabulary of 8000 subwords, the decoder's
    # table tied to its output layer
    return vt.Config("en_es", 8000, 8000, d=256, heads=4, layers=3, hidden=1024,
                     activation="relu", embed_scale=True, output="logits",
                     style="postnorm", out_name="out", start=2, eos=1, tied=True)


def torch_step_ms(threads, reps):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    cfg = en_es_config()
    params = {k: (torch.randn(s) * 0.05).requires_grad_() for k, s in vt.param_shapes(cfg).items()}
    model = vt.Model(cfg, params)
    src = torch.randint(4, cfg.src_vocab, (ROWS, LEN))
    tin = torch.randint(4, cfg.tgt_vocab, (ROWS, LEN))
    lab = torch.randint(4, cfg.tgt_vocab, (ROWS, LEN))
    lens = torch.full((ROWS,), LEN, dtype=torch.int64)
    times = []
    for r in range(reps + 2):
        t0 = time.perf_counter()
        for p in params.values():
            p.grad = None
        enc = model.encoder(src, lens)
        logits = model.decoder_logits(tin, lens, enc, lens)
        loss = F.cross_entropy(logits.reshape(-1, cfg.tgt_vocab), lab.reshape(-1),
                               label_smoothing=0.1, reduction="sum")
        loss.backward()
        if r >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    return 1e3 * times[len(times) // 2]


def vamos_step(bench, reps, lanes=2):
    """The step's median ms, and the GFLOP of its products."""
    env = dict(os.environ, VAMOS_JIT_CPU="x86-64-v3") if AVX2 else None
    out = subprocess.run([bench, "--reps", str(reps), "--lanes", str(lanes)], cwd=ROOT, capture_output=True,
                         text=True, env=env)
    if out.returncode:
        sys.exit("%s failed: %s" % (bench, out.stderr))
    ms = float(re.search(r"([\d.]+) ms per step", out.stdout).group(1))
    gflop = re.search(r"products: ([\d.]+) GFLOP", out.stdout)
    return ms, float(gflop.group(1)) if gflop else None


def vamos_step_ms(bench, reps, lanes=2):
    return vamos_step(bench, reps, lanes)[0]


def fma_peak():
    """The 2 cores' f32 multiply-add peak, GFLOP/s, with the vectors of the
    code measured (8 floats for --isa avx2): build/tests/bench/bandwidth."""
    exe = os.path.join(ROOT, "build", "tests", "bench", "bandwidth")
    args = [exe, "--fma-only"] + (["--width", "8"] if AVX2 else [])
    out = subprocess.run(args, capture_output=True, text=True)
    m = re.search(r"2 threads: ([\d.]+) GFLOP/s", out.stdout)
    return float(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser(parents=[ISA])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3,
                    help="Vamos and PyTorch measured in turn this many times")
    ap.add_argument("--also", metavar="TRAIN_BENCH",
                    help="another build's train_bench (say, before a change), measured in turn too")
    args = ap.parse_args()
    bench = os.path.join(ROOT, "build", "tests", "bench", "train_bench")
    tok = ROWS * LEN
    cpu, core = cpu_name(), blas_core()
    lines = [
        "training step of models/en-es.vam (forward + backward, no dropout), %d x %d tokens, medians of %d"
        % (ROWS, LEN, args.reps),
        "cpu: " + cpu + "; torch " + torch.__version__ + " (OMP_WAIT_POLICY=PASSIVE, best of 1 and 2 threads; "
        "its BLAS: %s)" % ("OpenBLAS, %s kernels" % core if core else "not OpenBLAS"),
    ]
    if AVX2:
        lines.append("isa avx2: vamos's kernels for x86-64-v3; pytorch with ATEN_CPU_CAPABILITY=avx2, "
                     "DNNL_MAX_CPU_ISA=AVX2, OPENBLAS_CORETYPE=Haswell")
    ratios, also_ratios, bounds, shares = [], [], [], []
    for r in range(args.rounds):
        peak = fma_peak()
        vamos_ms, gflop = vamos_step(bench, args.reps)
        one_lane_ms = vamos_step_ms(bench, args.reps, 1)
        also_ms = vamos_step_ms(args.also, args.reps) if args.also else None
        torch_ms = {t: torch_step_ms(t, args.reps) for t in (1, 2)}
        best = min(torch_ms.values())
        ratios.append(best / vamos_ms)
        line = ("round %d: vamos %7.1f ms (%5.0f tok/s; 1 lane %7.1f ms), pytorch %7.1f ms at 1 thread, %7.1f at 2 "
                "(%5.0f tok/s): vamos / best pytorch %.2fx (1 lane %.2fx)"
                % (r + 1, vamos_ms, tok / vamos_ms * 1e3, one_lane_ms, torch_ms[1], torch_ms[2], tok / best * 1e3,
                   best / vamos_ms, best / one_lane_ms))
        if peak and gflop:   # no code does the step's products faster than the FMA units
            bound_ms = gflop / peak * 1e3
            bounds.append(best / bound_ms)
            shares.append(bound_ms / vamos_ms)
            line += ("; FMA bound: %.1f GFLOP of products at %.0f GFLOP/s (2 cores, %d-float vectors) take %.0f ms, "
                     "so best pytorch / bound = %.2fx is the most any code could reach; vamos at %.0f%% of the bound"
                     % (gflop, peak, 8 if AVX2 or "AVX-512" not in cpu else 16, bound_ms, best / bound_ms,
                        100 * bound_ms / vamos_ms))
        if also_ms:
            also_ratios.append(also_ms / vamos_ms)
            line += "; %s %7.1f ms (this build %.2fx it)" % (args.also, also_ms, also_ms / vamos_ms)
        print(line, flush=True)
        lines.append(line)
    lines.append("vamos / best pytorch throughput: %.2f-%.2fx over %d rounds (%s%s)"
                 % (min(ratios), max(ratios), len(ratios), cpu, "; both as AVX2 code" if AVX2 else ""))
    if bounds:
        lines.append("FMA bound: at most %.2f-%.2fx for any code; vamos's step at %.0f-%.0f%% of the bound"
                     % (min(bounds), max(bounds), 100 * min(shares), 100 * max(shares)))
    if also_ratios:
        lines.append("this build / %s: %.2f-%.2fx" % (args.also, min(also_ratios), max(also_ratios)))
    print("\n".join(lines[-2:] if bounds else lines[-1:]))
    with open(os.path.join(HERE, "results", "train-avx2.txt" if AVX2 else "train.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
