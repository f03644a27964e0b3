"""fit_statquest.py - fit the weights of models/statquest.vam with PyTorch.

Trains the two-number-per-word transformer so that greedy decoding gives
    "let's go" -> "vamos"      "to go" -> "ir"
(source tokens without <eos>; the decoder starts from <eos> and stops when it
emits <eos>), then writes models/statquest.safetensors (all F32, metadata
"vamos.model": "statquest") and checks it by greedy decoding.

Run from anywhere:  /usr/bin/python3 models/fit_statquest.py
Deterministic: fixed seed, CPU, one thread; takes a few seconds.
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "golden"))
import vamos_torch as vt  # noqa: E402

torch.set_num_threads(1)

SRC_WORDS = ["<eos>", "let's", "to", "go"]
TGT_WORDS = ["<eos>", "ir", "vamos", "y"]
# (source ids, expected output ids ending with <eos>)
EXAMPLES = [([1, 3], [2, 0]),   # let's go -> vamos <eos>
            ([2, 3], [1, 0])]   # to go    -> ir <eos>
TARGET_P = 0.999                # stop once every step is this sure
OUT = os.path.join(HERE, "statquest.safetensors")


def fit(seed=0, steps=3000):
    torch.manual_seed(seed)
    cfg = vt.statquest_config()
    params = {k: torch.nn.Parameter(torch.randn(s) * 0.5)
              for k, s in vt.param_shapes(cfg).items()}
    model = vt.Model(cfg, params)
    src = torch.tensor([s for s, _ in EXAMPLES])
    want = torch.tensor([t for _, t in EXAMPLES])
    tgt = torch.cat([torch.full((len(EXAMPLES), 1), cfg.start), want[:, :-1]], 1)
    n = [src.shape[1]] * len(EXAMPLES)
    m = [tgt.shape[1]] * len(EXAMPLES)
    opt = torch.optim.Adam(params.values(), lr=0.02)
    for step in range(steps):
        mem = model.encoder(src, n)
        z = model.decoder_logits(tgt, m, mem, n)
        logp = torch.log_softmax(z, -1)
        loss = -logp.gather(-1, want.unsqueeze(-1)).mean()
        # a little weight decay keeps the weights moderate
        loss_total = loss + 1e-4 * sum((p * p).sum() for p in params.values())
        opt.zero_grad()
        loss_total.backward()
        opt.step()
        pmin = float(logp.gather(-1, want.unsqueeze(-1)).exp().min())
        if pmin > TARGET_P:
            break
    print("fit: %d steps, loss %.5f, min p(right) %.5f" % (step + 1, float(loss), pmin))
    return {k: v.detach().clone() for k, v in params.items()}


def main():
    params = fit()
    vt.write_safetensors(OUT, params, {"vamos.model": "statquest"})
    # verify from the file, in float32
    loaded, meta = vt.load_params(OUT)
    assert meta.get("vamos.model") == "statquest"
    model = vt.build("statquest", loaded)
    ok = True
    for src, want in EXAMPLES:
        got, probs = model.greedy(src)
        print("%-10s -> %-12s p = %s" % (
            " ".join(SRC_WORDS[i] for i in src),
            " ".join(TGT_WORDS[i] for i in got),
            ", ".join("%.5f" % p for p in probs)))
        ok = ok and got == want and min(probs) > 0.9
    print("max |weight| = %.3f" % max(float(v.abs().max()) for v in loaded.values()))
    print("wrote", OUT)
    if not ok:
        sys.exit("statquest fit failed")


if __name__ == "__main__":
    main()
