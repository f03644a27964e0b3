#!/usr/bin/python3
"""tune_bench.py - what `vamos tune` buys on the base model.

    /usr/bin/python3 tests/bench/tune_bench.py [--budget 60] [--reps 5]

1. Tunes models/base.vam with the budget into a fresh database (the time
   it takes is the first figure), then again with --exhaustive into
   another: for each kernel, how close the budgeted search came to the
   best schedule of all (budgeted tuned time / exhaustive best time).
2. Builds base's translator with the budgeted database and with
   --no-tune (weights: vamos init --seed 1), and translates the same 40
   sentences with each in turn, --reps times: medians of ms per target
   word and of sentences/s, and untuned / tuned.
Writes tests/bench/results/tune.txt.
"""
import argparse, os, random, re, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VAMOS = os.path.join(ROOT, "build", "vamos")


def tune(db, extra):
    t0 = time.time()
    out = subprocess.run([VAMOS, "tune", "models/base.vam", "--db", db] + extra, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        m = re.match(r"(\w+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x\s+(.*?)\s{2,}(\S.*)$", line)
        if m:
            rows[m.group(7)] = (m.group(1), int(m.group(2)), float(m.group(3)), float(m.group(4)), m.group(6))
    return time.time() - t0, rows


def stats(binary, sentences):
    r = subprocess.run([binary, "--stats", "--max-len", "40"], input=sentences, capture_output=True, text=True,
                       check=True)
    m = re.search(r"([\d.]+) ms per target token, ([\d.]+) sentences/s", r.stderr)
    return float(m.group(1)), float(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=60)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    out = []
    with tempfile.TemporaryDirectory() as t:
        db, exh = os.path.join(t, "tune.db"), os.path.join(t, "exhaustive.db")
        secs, tuned = tune(db, ["--budget", str(a.budget)])
        out.append(f"# vamos tune models/base.vam --budget {a.budget:g}: {secs:.1f} s for {len(tuned)} kernels")
        esecs, best = tune(exh, ["--exhaustive"])
        out.append(f"# exhaustive search: {esecs:.1f} s")
        out.append("# graph    nodes  default_us  budgeted_us  exhaustive_us  budgeted/exhaustive  kernel")
        for sig, (g, n, d, tu, sch) in tuned.items():
            e = best.get(sig, (g, n, d, float("nan"), ""))[3]
            out.append(f"{g:8s} {n:5d}  {d:10.1f}  {tu:11.1f}  {e:13.1f}  {tu / e:19.2f}  {sig}")
        w = os.path.join(t, "base.safetensors")
        subprocess.run([VAMOS, "init", "models/base.vam", "-o", w, "--seed", "1"], cwd=ROOT, check=True,
                       capture_output=True)
        bins = {}
        for name, flags in (("tuned", ["--db", db]), ("untuned", ["--no-tune"])):
            bins[name] = os.path.join(t, name)
            subprocess.run([VAMOS, "build", "models/base.vam", "-w", w, "-o", bins[name]] + flags, cwd=ROOT,
                           check=True, capture_output=True)
        random.seed(1)
        words = ("the of and to in a is that for it as was with be by on not he this are or his from at which "
                 "but have an they you were her she there one all we their").split()
        sentences = "".join(" ".join(random.choice(words) for _ in range(random.randint(5, 25))) + "\n"
                            for _ in range(40))
        res = {"tuned": [], "untuned": []}
        for _ in range(a.reps):
            for name in ("untuned", "tuned"):
                res[name].append(stats(bins[name], sentences))
        med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in res.items()}
        out.append(f"# base, batch 1, 40 sentences, greedy, medians of {a.reps}: ms per target word, sentences/s")
        for k in ("untuned", "tuned"):
            out.append(f"{k:8s} {med[k][0]:8.2f} {med[k][1]:8.2f}")
        out.append(f"untuned/tuned ms per word: {med['untuned'][0] / med['tuned'][0]:.3f}")
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(ROOT, "tests", "bench", "results", "tune.txt"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
