#!/usr/bin/python3
"""attention_torch.py - the attention benchmark with its PyTorch peer in the
same run: runs build/tests/bench/attention_bench (Vamos fused against
unfused) and times PyTorch on the same cases, then prints one table.

    /usr/bin/python3 tests/bench/attention_torch.py [--reps 9] [--out FILE]

The cases: batch 1, 8 heads of 64, lengths 16, 64, 256, 1024, a padding
mask, and for "causal" the causal mask added. PyTorch (1.13: no fused
scaled_dot_product_attention yet) computes what the standard library
writes, softmax(q @ k^T / 8 + mask) @ v, with q, k, v as [1, 8, L, 64]
and k^T a view (so, like Vamos's timed kernels, no transpose is timed).
It gets its best setting: OMP_WAIT_POLICY=PASSIVE, the better of 1 and 2
threads per case. Times are medians of --reps runs after a warm-up;
ratios > 1 mean Vamos's fused kernel is faster. Writes the raw table to
tests/bench/results/attention.txt (plot.py draws it).
"""
import argparse, os, statistics, subprocess, sys, time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def torch_ms(L, causal, reps):
    g = torch.Generator().manual_seed(L)
    q, k, v = (torch.randn(1, 8, L, 64, generator=g) for _ in range(3))
    mask = torch.zeros(1, 1, 1, L)
    if causal:
        mask = mask + torch.triu(torch.full((L, L), float("-inf")), 1)
    kt = k.transpose(-1, -2)
    best = None
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with torch.no_grad():
            for _ in range(2):
                torch.softmax(q @ kt / 8.0 + mask, -1) @ v
            ts = []
            for _ in range(reps):
                t = time.perf_counter()
                torch.softmax(q @ kt / 8.0 + mask, -1) @ v
                ts.append(time.perf_counter() - t)
        m = statistics.median(ts) * 1e3
        best = m if best is None else min(best, m)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "attention.txt"))
    a = ap.parse_args()
    exe = os.path.join(ROOT, "build", "tests", "bench", "attention_bench")
    if not os.path.exists(exe):
        sys.exit("attention_torch.py: build first (%s is missing)" % exe)
    vamos = subprocess.run([exe, "--reps", str(a.reps)], capture_output=True, text=True, check=True).stdout
    out = []
    for line in vamos.splitlines():
        if line.startswith("# len"):
            out.append(line + "  pytorch  pytorch/fused")
        elif line.startswith("#"):
            out.append(line + "; pytorch: best of 1 and 2 threads")
        elif line.strip():
            f = line.split()
            pt = torch_ms(int(f[0]), f[1] == "causal", a.reps)
            out.append("%s  %7.3f  %6.2f" % (line, pt, pt / float(f[2])))
        print(out[-1], flush=True)
    out.append("# machine: %d cores; pytorch %s, OMP_WAIT_POLICY=PASSIVE" % (os.cpu_count(), torch.__version__))
    with open(a.out, "w") as fh:
        fh.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
