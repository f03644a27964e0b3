#!/usr/bin/python3
"""isa_bench.py - the code an AVX2-only machine gets, measured on this one.

    /usr/bin/python3 tests/bench/isa_bench.py [--rounds 3] [--data DIR]

Machines of this project's kind are AMD EPYC Zen 3 (AVX2 and FMA, 16
vector registers) or Zen 4 (AVX-512, 32). On a Zen 4, Vamos can compile
the code a Zen 3 gets: the JIT with VAMOS_JIT_CPU=x86-64-v3, a translator
with `vamos build --cpu x86-64-v3`. Both then have AVX2's 16 registers and
AVX2's defaults, so what depends on the register count (the matmul's
register tile spilling or not) shows here too; what depends on Zen 3's
own pipelines does not. In turn, --rounds times:

- one en-es training step (build/tests/bench/train_bench, 2 threads, 2
  lanes): x86-64-v3 code against this machine's own;
- the en-es translator on the 1,254 dev-ood sources (2 threads, default
  batching), built for x86-64-v3 and for this machine, f32 and
  `--quantize int8` (its activations have 7 bits in x86-64-v3 code, 8
  where this machine has VNNI): sentences/s; and the int8 translators'
  BLEU/chrF on dev-ood (`vamos eval`), beside f32's.

Prints medians and ratios, each line naming the CPU, and writes
tests/bench/results/avx2.txt.
"""
import argparse, os, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VAMOS = os.path.join(ROOT, "build", "vamos")
sys.path.insert(0, HERE)
from machine import cpu_name  # noqa: E402


def step_ms(cpu):
    env = dict(os.environ)
    if cpu:
        env["VAMOS_JIT_CPU"] = cpu
    out = subprocess.run([os.path.join(ROOT, "build", "tests", "bench", "train_bench"), "--reps", "6", "--threads",
                          "2", "--lanes", "2"], env=env, capture_output=True, text=True, check=True).stdout
    return float(out.split("vamos en_es:")[1].split("ms")[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "en-es"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="vamos-isa-bench-")
    exe = {}
    for cpu in ("x86-64-v3", "native"):
        for q in ("f32", "int8"):
            exe[cpu, q] = os.path.join(tmp, "enes-%s-%s" % (cpu, q))
            subprocess.run([VAMOS, "build", "models/en-es.vam", "-w", "models/en-es.safetensors", "--no-tune", "--cpu",
                            cpu, "-o", exe[cpu, q]] + (["--quantize", q] if q != "f32" else []),
                           check=True, cwd=ROOT, stderr=subprocess.DEVNULL)
    src = os.path.join(tmp, "src.txt")
    sents = [l.split("\t")[0] for l in open(os.path.join(a.data, "dev-ood.tsv"), encoding="utf-8") if "\t" in l]
    with open(src, "w") as f:
        f.write("\n".join(sents) + "\n")

    def sps(key):
        t0 = time.perf_counter()
        subprocess.run([exe[key], "--threads", "2"], stdin=open(src), stdout=subprocess.DEVNULL, check=True)
        return len(sents) / (time.perf_counter() - t0)

    steps = {"x86-64-v3": [], "native": []}
    rates = {k: [] for k in exe}
    for _ in range(a.rounds):
        for cpu in ("x86-64-v3", "native"):
            steps[cpu].append(step_ms(cpu if cpu != "native" else None))
            for q in ("f32", "int8"):
                rates[cpu, q].append(sps((cpu, q)))
    s3, sn = statistics.median(steps["x86-64-v3"]), statistics.median(steps["native"])
    rate = {k: statistics.median(v) for k, v in rates.items()}
    r3, rn = rate["x86-64-v3", "f32"], rate["native", "f32"]
    quality = {}
    for k in exe:
        out = subprocess.run([VAMOS, "eval", exe[k], os.path.join(a.data, "dev-ood.tsv")], capture_output=True,
                             text=True, check=True, cwd=ROOT).stdout + ""
        quality[k] = " ".join(out.split("(")[0].split())
    lines = [
        "the code of an AVX2-only machine (x86-64-v3) against this machine's own (tests/bench/isa_bench.py), %s"
        % cpu_name(),
        "en-es training step (train_bench, 2 threads, 2 lanes, medians of %d rounds): x86-64-v3 %.1f ms, native %.1f ms:"
        " x86-64-v3 takes %.2fx" % (a.rounds, s3, sn, s3 / sn),
        "en-es translator, dev-ood (1,254 lines, 2 threads, untuned): x86-64-v3 %.0f sentences/s, native %.0f: %.2fx"
        % (r3, rn, r3 / rn),
    ]
    for cpu in ("x86-64-v3", "native"):
        lines.append("en-es int8 translator, %s code: %.0f sentences/s, %.2fx its f32's; dev-ood %s (f32: %s)"
                     % (cpu, rate[cpu, "int8"], rate[cpu, "int8"] / rate[cpu, "f32"], quality[cpu, "int8"],
                        quality[cpu, "f32"]))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with open(os.path.join(HERE, "results", "avx2.txt"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
