#!/usr/bin/python3
"""decode_bench.py - decoding speed in one run: base and en-es, f32 and
int8, batch 1 and 32, 1 and 2 threads, each figure also as a fraction of
the floor this machine's own measurements set.

    /usr/bin/python3 tests/bench/decode_bench.py [--runs 3] [--no-torch] [--data DIR]

- The machine: its CPU and instruction set, DRAM bandwidth and f32 FMA
  peak (build/tests/bench/bandwidth), 1 and 2 threads.
- base (d 512, 6 + 6 layers, 32k words; `vamos init` weights, seed 11),
  built three times: f32, `--quantize int8` (int8 activations and integer
  dot products where the CPU has VNNI, which the first lines say) and
  `--quantize int8w` (int8 weights widened to f32).
  - batch 1: 8 sentences decoded to 32 words one at a time (`--batch 1
    --window 1 --stats`): ms per word. Its floor is memory: the bytes of
    weights a step reads (`vamos check`: 154 MB in f32; a quarter of that,
    less the f32 norms and biases, in int8) over the DRAM bandwidth.
  - batch 32: 32 sentences decoded to 32 words together: sentences/s. Its
    floor is compute over the FMA peak: 2 flops per weight a step reads,
    per row, and per weight the encoder and the per-sentence graph (the
    cross-attention's keys and values) multiply each source token by
    (`vamos check`; source tokens as `--stats` counts them, padding not
    counted). Attention's own flops are left out: they grow with the
    length and are a few percent here, so the floor is generous to Vamos.
  - the peer: PyTorch (tests/golden's base with its key/value cache,
    OMP_WAIT_POLICY=PASSIVE, best of 1 and 2 threads) on the same
    sentences and weights; it must give f32 Vamos's words.
- beam 4 against greedy: base one sentence at a time (the 8 sentences,
  whole process); en-es one sentence at a time and batched.
- en-es (the shipped model) on the 1,254 sources of dev-ood.tsv, f32,
  int8 and int8w, the translator's default batching: sentences/s.

Figures are medians of --runs. Writes tests/bench/results/decode.txt and
docs/decode.svg (ms per word and sentences/s as fractions of the floor).
"""
import argparse, os, re, statistics, subprocess, sys, tempfile, time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build")
VAMOS = os.path.join(BUILD, "vamos")
WORDS = 32
QUANT = ("f32", "int8", "int8w")   # int8: activations too where the CPU has VNNI; int8w: weights only
sys.path.insert(0, HERE)
from machine import cpu_name  # noqa: E402


def floors():
    out = subprocess.run([os.path.join(BUILD, "tests", "bench", "bandwidth"), "--mb", "512", "--reps", "5"],
                         check=True, capture_output=True, text=True).stdout
    gbs = {int(t): float(v) for t, v in re.findall(r"(\d) threads?: ([\d.]+) GB/s", out)}
    gflops = {int(t): float(v) for t, v in re.findall(r"(\d) threads?: ([\d.]+) GFLOP/s", out)}
    return gbs, gflops


def weights_mb(model):
    """MB of weights a decoder step reads, and those each source token is
    multiplied by in the encoder and the per-sentence graph (vamos check)."""
    out = subprocess.run([VAMOS, "check", model], check=True, capture_output=True, text=True).stdout
    step = float(re.search(r"a step reads ([\d.]+) MB", out).group(1))
    enc, prep = re.search(r"multiplied by ([\d.]+) MB of weights in the encoder and ([\d.]+) MB", out).groups()
    return step, float(enc) + float(prep)


def run(binary, args, lines):
    data = "".join(l + "\n" for l in lines).encode()
    t = time.perf_counter()
    p = subprocess.run([binary] + args, input=data, capture_output=True, check=True)
    return time.perf_counter() - t, p.stdout.decode().splitlines(), p.stderr.decode()


def sentences(n, seed):
    import random
    rng = random.Random(seed)
    return [" ".join("w%d" % rng.randrange(4, 32000) for _ in range(rng.randrange(5, 16))) for _ in range(n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "en-es"))
    ap.add_argument("--out", default=os.path.join(HERE, "results", "decode.txt"))
    ap.add_argument("--svg", default=os.path.join(ROOT, "docs", "decode.svg"))
    a = ap.parse_args()
    rows = ["cpu: " + cpu_name()]
    gbs, gflops = floors()
    for t in (1, 2):
        rows.append("%d thread%s: DRAM %.1f GB/s, f32 FMA peak %.1f GFLOP/s" % (t, "s" if t > 1 else "", gbs[t],
                                                                             gflops[t]))
    tmp = tempfile.mkdtemp(prefix="vamos-decode-")
    base = os.path.join(ROOT, "models", "base.vam")
    w = os.path.join(tmp, "base.safetensors")
    subprocess.run([VAMOS, "init", base, "-o", w, "--seed", "11"], check=True, capture_output=True)
    bins = {}
    flags = open("/proc/cpuinfo").read()
    rows.append("int8: weights and activations (integer dot products) where the CPU has VNNI: %s; int8w: weights "
                "only, widened to f32" % ("yes" if "avx512_vnni" in flags or "avx_vnni" in flags else "NO, as int8w"))
    for q in QUANT:
        bins["base", q] = os.path.join(tmp, "base-" + q)
        bins["en-es", q] = os.path.join(tmp, "en-es-" + q)
        extra = ["--quantize", q] if q != "f32" else []
        subprocess.run([VAMOS, "build", base, "-w", w, "-o", bins["base", q]] + extra, check=True, capture_output=True)
        subprocess.run([VAMOS, "build", os.path.join(ROOT, "models", "en-es.vam"), "-w",
                        os.path.join(ROOT, "models", "en-es.safetensors"), "-o", bins["en-es", q]] + extra,
                       check=True, capture_output=True)
    mb, src_mb = weights_mb(base)
    mb_q = {"f32": mb, "int8": mb / 4, "int8w": mb / 4}   # the scales, norms and biases stay f32: a little more
    flop_per_row = 2 * mb * 1e6 / 4      # a multiply-add per weight a step reads
    flop_per_src = 2 * src_mb * 1e6 / 4  # ... and per weight a source token meets
    one, many = sentences(8, 1), sentences(32, 2)
    res, outs, svg = {}, {}, []
    for threads in (1, 2):
        th = ["--threads", str(threads)]
        for q in QUANT:
            b = bins["base", q]
            ms = []
            for _ in range(a.runs):
                _, o, err = run(b, ["--max-len", str(WORDS), "--batch", "1", "--window", "1", "--stats"] + th, one)
                ms.append(float(re.search(r"([\d.]+) ms per target token", err).group(1)))
                outs["base", q, 1] = o
            m1 = statistics.median(ms)
            floor1 = mb_q[q] * 1e6 / (gbs[threads] * 1e9) * 1e3
            s32 = statistics.median([len(many) / run(b, ["--max-len", str(WORDS), "--batch", "32"] + th, many)[0]
                                     for _ in range(a.runs)])
            outs["base", q, 32] = run(b, ["--max-len", str(WORDS), "--batch", "32"] + th, many)[1]
            if "src32" not in res:   # the 32 sentences' source tokens, as the translator counts them
                err = run(b, ["--max-len", str(WORDS), "--batch", "32", "--stats"] + th, many)[2]
                res["src32"] = int(re.search(r"source tokens (\d+)", err).group(1))
            flops32 = flop_per_row * WORDS * len(many) + flop_per_src * res["src32"]
            floor32 = gflops[threads] * 1e9 * len(many) / flops32   # sentences/s at the compute floor
            res["base", q, threads] = (m1, s32)
            rows.append("base %-5s %d thread%s: batch 1 %.2f ms/word (floor %.2f: %.0f%%); batch 32 %.1f sentences/s "
                        "(floor %.1f: %.0f%%)" % (q, threads, "s" if threads > 1 else " ", m1, floor1,
                                                  100 * floor1 / m1, s32, floor32, 100 * s32 / floor32))
            svg.append(("base %s b1 %dt" % (q, threads), floor1 / m1))
            svg.append(("base %s b32 %dt" % (q, threads), s32 / floor32))
    for q in QUANT[1:]:
        r1 = min(res["base", q, t][0] for t in (1, 2)) / min(res["base", "f32", t][0] for t in (1, 2))
        rows.append("base %s batch 1 ms/word / f32's (best of 1 and 2 threads each): %.2f" % (q, r1))
    for q in QUANT:   # the 32 sentences one at a time, untimed
        o = run(bins["base", q], ["--max-len", str(WORDS), "--batch", "1", "--window", "1"], many)[1]
        rows.append("base %s: batch 32 gives the words of one sentence at a time: %s"
                    % (q, "yes" if o == outs["base", q, 32] else "NO"))
    for qq in QUANT[1:]:
        agree = tot = 0
        for x, y in zip(outs["base", "f32", 32], outs["base", qq, 32]):
            x, y = x.split(), y.split()
            tot += max(len(x), len(y))
            agree += sum(1 for p, q in zip(x, y) if p == q)
        rows.append("base %s against f32, batch 32: %d of %d words agree (%.1f%%)" % (qq, agree, tot,
                                                                                   100 * agree / tot))
    one_args = ["--max-len", str(WORDS), "--batch", "1", "--window", "1"]   # the case: base, batch 1
    g = statistics.median([run(bins["base", "f32"], one_args, one)[0] for _ in range(a.runs)])
    b4 = statistics.median([run(bins["base", "f32"], one_args + ["--beam", "4"], one)[0] for _ in range(a.runs)])
    rows.append("base f32 2 threads, one sentence at a time: greedy %.0f ms a sentence, beam 4 %.0f: beam 4 costs "
                "%.2fx greedy" % (1e3 * g / len(one), 1e3 * b4 / len(one), b4 / g))
    ood = os.path.join(a.data, "dev-ood.tsv")
    if os.path.exists(ood):
        with open(ood, encoding="utf-8") as f:
            src = [l.split("\t")[0] for l in f if l.strip()]
        said = {}
        for threads in (1, 2):
            for q in QUANT:
                r = [run(bins["en-es", q], ["--threads", str(threads)], src) for _ in range(a.runs)]
                said[q] = r[0][1]
                s = statistics.median([len(src) / x[0] for x in r])
                rows.append("en-es %-5s %d thread%s: %.0f sentences/s on dev-ood (%d lines, default batching)"
                            % (q, threads, "s" if threads > 1 else " ", s, len(src)))
        for q in QUANT[1:]:
            same = sum(x == y for x, y in zip(said["f32"], said[q]))
            rows.append("en-es %s against f32 on dev-ood: %d of %d lines the same words" % (q, same, len(src)))
        for how, args in (("one sentence at a time", ["--batch", "1", "--window", "1"]), ("default batching", [])):
            g = statistics.median([run(bins["en-es", "f32"], args, src)[0] for _ in range(a.runs)])
            b4 = statistics.median([run(bins["en-es", "f32"], args + ["--beam", "4"], src)[0] for _ in range(a.runs)])
            rows.append("en-es f32 2 threads, %s: greedy %.0f sentences/s, beam 4 %.0f: beam 4 costs %.2fx greedy"
                        % (how, len(src) / g, len(src) / b4, b4 / g))
    if not a.no_torch:
        sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
        sys.path.insert(0, HERE)
        import torch
        import vamos_torch
        import translate_bench as tb
        tb.MAX_LEN = WORDS
        params, _ = vamos_torch.load_params(w)
        model = vamos_torch.build("base", params)
        best = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for batch, lines in ((1, one), (32, many)):
                r = [tb.torch_greedy_cached(model, lines, batch) for _ in range(a.runs)]
                t = statistics.median(x[0] for x in r)
                best[batch] = min(t, best.get(batch, t))
                if batch == 1 and r[0][1] != outs["base", "f32", 1]:
                    rows.append("pytorch and vamos f32 differ at batch 1: NOT the same model run")
        v1 = min(res["base", "f32", t][0] for t in (1, 2))
        v32 = max(res["base", "f32", t][1] for t in (1, 2))
        q1 = min(res["base", "int8", t][0] for t in (1, 2))
        p1 = 1e3 * best[1] / (len(one) * WORDS)
        rows.append("pytorch %s (kv cache, PASSIVE, best of 1 and 2 threads): batch 1 %.2f ms/word (vamos f32 %.2f: "
                    "%.2fx, int8 %.2f: %.2fx); batch 32 %.1f sentences/s (vamos f32 %.1f: %.2fx)"
                    % (torch.__version__, p1, v1, p1 / v1, q1, p1 / q1, len(many) / best[32], v32,
                       v32 * best[32] / len(many)))
    text = "\n".join(rows) + "\n"
    print(text, end="")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)
    write_svg(a.svg, svg, rows[0])


def write_svg(path, items, title):
    w, h, x0, y0 = 760, 300, 60, 50
    bw = (w - x0 - 20) / len(items)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif">' % (w, h + 120),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="20" font-size="14" font-weight="bold">base decoding: fraction of the floor '
           '(batch 1: DRAM bandwidth; batch 32: f32 FMA peak)</text>' % x0,
           '<text x="%d" y="38" font-size="11">%s</text>' % (x0, title.replace("&", "&amp;"))]
    for f in (0.25, 0.5, 0.75, 1.0):
        y = y0 + h - h * f
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ccc"/>' % (x0, y, w - 20, y))
        out.append('<text x="%d" y="%.1f" font-size="10" text-anchor="end">%d%%</text>' % (x0 - 4, y + 3, 100 * f))
    for i, (label, v) in enumerate(items):
        bh = h * min(v, 1.0)
        x = x0 + i * bw + bw * 0.15
        color = "#6c8ebf" if "f32" in label else "#d79b00"
        out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>' % (x, y0 + h - bh, bw * 0.7, bh,
                                                                                        color))
        out.append('<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle">%.0f%%</text>'
                   % (x + bw * 0.35, y0 + h - bh - 3, 100 * v))
        out.append('<text x="%.1f" y="%d" font-size="10" transform="rotate(40 %.1f %d)">%s</text>'
                   % (x, y0 + h + 14, x, y0 + h + 14, label))
    out.append("</svg>")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
