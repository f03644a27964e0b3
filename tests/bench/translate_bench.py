#!/usr/bin/python3
"""translate_bench.py - end-to-end translation speed of the base model:
Vamos's built translator against PyTorch running the same model with the
same weights on the same sentences, in the same run.

    /usr/bin/python3 tests/bench/translate_bench.py [--runs 3] [--out FILE]

Measures: the time of `vamos build models/base.vam` (373 MB of weights);
latency per sentence at batch 1; sentences/s at batch 32. Both sides
decode greedily with the same maximum length (random weights never emit
<eos>, so every sentence runs to it). Vamos decodes with its derived
one-word step (key/value caches). PyTorch (tests/golden's implementation)
runs as two peers: "pytorch" re-runs the decoder over the whole prefix each
step; "pytorch with kv cache" (Model.greedy_cached) projects the encoder
memory's cross-attention keys/values once per layer and runs only the new
position each step, appending its self-attention keys/values to
preallocated per-layer caches. The two must give the same words; the
benchmark checks it. Each PyTorch peer gets its best setting:
OMP_WAIT_POLICY=PASSIVE, the better of 1 and 2 threads (chosen per peer and
batch size). Figures are medians of --runs repetitions; ratios are PyTorch
time / Vamos time (> 1: Vamos is faster). Needs python3-torch and a build/.
"""
import argparse, os, random, statistics, subprocess, sys, tempfile, time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
import torch                      # noqa: E402
import vamos_torch                # noqa: E402

MAX_LEN = 8


def sentences(n, seed):
    rng = random.Random(seed)
    return [" ".join("w%d" % rng.randrange(4, 32000) for _ in range(rng.randrange(5, 16))) for _ in range(n)]


def ids(s):
    return [int(w[1:]) for w in s.split()]


def vamos_time(binary, lines, batch):
    data = "".join(l + "\n" for l in lines).encode()
    t = time.perf_counter()
    out = subprocess.run([binary, "--max-len", str(MAX_LEN), "--batch", str(batch)], input=data,
                         capture_output=True, check=True).stdout.decode().splitlines()
    return time.perf_counter() - t, out


@torch.no_grad()
def torch_greedy(model, lines, batch):
    cfg = model.cfg
    t = time.perf_counter()
    outs = []
    for i in range(0, len(lines), batch):
        srcs = [ids(l) for l in lines[i:i + batch]]
        n = max(len(s) for s in srcs)
        mem = model.encoder([s + [0] * (n - len(s)) for s in srcs], [len(s) for s in srcs])
        ys = [[cfg.start] for _ in srcs]
        for _ in range(MAX_LEN):
            z = model.decoder_logits(ys, [len(y) for y in ys], mem, [len(s) for s in srcs])[:, -1]
            for y, tok in zip(ys, torch.argmax(z, dim=-1).tolist()):
                y.append(tok)
        outs += [" ".join("w%d" % t for t in y[1:]) for y in ys]
    return time.perf_counter() - t, outs


@torch.no_grad()
def torch_greedy_cached(model, lines, batch):
    t = time.perf_counter()
    outs = []
    for i in range(0, len(lines), batch):
        srcs = [ids(l) for l in lines[i:i + batch]]
        n = max(len(s) for s in srcs)
        ys = model.greedy_cached([s + [0] * (n - len(s)) for s in srcs], [len(s) for s in srcs], MAX_LEN)
        outs += [" ".join("w%d" % t for t in y) for y in ys]
    return time.perf_counter() - t, outs


PEERS = (("pytorch", torch_greedy), ("pytorch with kv cache", torch_greedy_cached))


def median(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "translate.txt"))
    a = ap.parse_args()
    vamos = os.path.join(ROOT, "build", "vamos")
    tmp = tempfile.mkdtemp(prefix="vamos-bench-")
    w, binary = os.path.join(tmp, "base.safetensors"), os.path.join(tmp, "base")
    subprocess.run([vamos, "init", os.path.join(ROOT, "models", "base.vam"), "-o", w, "--seed", "11"],
                   check=True, capture_output=True)
    builds = []
    for _ in range(a.runs):
        t = time.perf_counter()
        subprocess.run([vamos, "build", os.path.join(ROOT, "models", "base.vam"), "-w", w, "-o", binary],
                       check=True, capture_output=True)
        builds.append(time.perf_counter() - t)
    params, _ = vamos_torch.load_params(w)
    model = vamos_torch.build("base", params)
    one, many = sentences(8, 1), sentences(32, 2)
    rows = []
    v1 = [vamos_time(binary, one, 1) for _ in range(a.runs)]
    v32 = [vamos_time(binary, many, 32) for _ in range(a.runs)]
    best, outs = {}, {}           # (peer, batch) -> best median time, output
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, fn in PEERS:
            for batch, lines in ((1, one), (32, many)):
                runs = [fn(model, lines, batch) for _ in range(a.runs)]
                t = median([r[0] for r in runs])
                best[name, batch] = min(t, best.get((name, batch), t))
                outs[name, batch] = runs[0][1]
    same1 = v1[0][1] == outs["pytorch", 1]
    same_kv = all(outs["pytorch with kv cache", b] == outs["pytorch", b] for b in (1, 32))
    vm1, vm32 = median([t for t, _ in v1]), median([t for t, _ in v32])
    rows.append("vamos build models/base.vam: %.2f s (median of %d)" % (median(builds), a.runs))
    for name, _ in PEERS:
        best1 = best[name, 1]
        rows.append("batch 1, per sentence (max %d words): vamos %.1f ms, %s %.1f ms, ratio %.2f"
                    % (MAX_LEN, 1e3 * vm1 / len(one), name, 1e3 * best1 / len(one), best1 / vm1))
    for name, _ in PEERS:
        best32 = best[name, 32]
        rows.append("batch 32, sentences/s: vamos %.1f, %s %.1f, ratio %.2f"
                    % (len(many) / vm32, name, len(many) / best32, best32 / vm32))
    rows.append("same greedy output as pytorch at batch 1: %s" % ("yes" if same1 else "NO"))
    rows.append("same greedy output, pytorch with kv cache as pytorch (batch 1 and 32): %s"
                % ("yes" if same_kv else "NO"))
    rows.append("machine: %s, %d cores; pytorch %s, OMP_WAIT_POLICY=%s, best of 1 and 2 threads"
                % (os.uname().machine, os.cpu_count(), torch.__version__, os.environ["OMP_WAIT_POLICY"]))
    text = "\n".join(rows) + "\n"
    print(text, end="")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
