"""make_train_golden.py - the golden training step the C tests compare against.

Computes the loss and its gradient with respect to every weight of the small
model (tests/golden/small.vam, weights tests/golden/small.safetensors) for one
fixed batch, with the PyTorch reference (vamos_torch.py) in float64 and
autograd, and writes tests/golden/small.train.golden.safetensors with
    src I32 [B,N], src_len I32 [B], tgt_in I32 [B,M], tgt_len I32 [B],
    labels I32 [B,M] (-1: position not scored), loss F32 [1],
    grad.<weight name> F32 (the weight's shape), for every weight
(float64 results cast to float32).

The step: encoder on src/src_len, decoder teacher-forced on tgt_in/tgt_len
with memory = encoder output (cross-attention hides source positions >=
src_len), float64, no dropout. With x the decoder's logits (the output of the
final linear layer `out`, i.e. the input of its log_softmax), logp =
log_softmax(x), V = 12 target words and smoothing eps = 0.1, each scored
position contributes
    -(1 - eps) * logp[label] - (eps / V) * sum_j logp[j]
and the loss is the SUM over scored positions (not the mean).

Checks (printed): the same step in float32 against float64 (relative error
max |a-b| / (|b| + rms(b)) per tensor), and central finite differences in
float64 on 3 random weight elements against autograd.

Run:  /usr/bin/python3 tests/golden/make_train_golden.py
(after make_golden.py, which writes small.safetensors)
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vamos_torch as vt  # noqa: E402

torch.set_num_threads(1)

EPS = 0.1  # label smoothing

# "the cat sat mat <eos>" / "a dog <eos>";
# "<bos> el gato se" -> "el gato se <eos>" / "<bos> un" -> "un <eos>"
BATCH = dict(src=[[2, 3, 4, 6, 1], [7, 8, 1, 0, 0]], src_len=[5, 3],
             tgt_in=[[2, 3, 4, 5], [2, 10, 0, 0]], tgt_len=[4, 2],
             labels=[[3, 4, 5, 1], [10, 1, -1, -1]])


def loss_fn(model, batch):
    """Label-smoothed cross entropy of the batch, summed over the scored
    positions (labels >= 0), computed on the decoder's logits."""
    enc = model.encoder(batch["src"], batch["src_len"])
    x = model.decoder_logits(batch["tgt_in"], batch["tgt_len"], enc,
                             batch["src_len"])            # [B, M, V] logits
    logp = torch.log_softmax(x, dim=-1)
    v = logp.shape[-1]
    labels = torch.as_tensor(batch["labels"], dtype=torch.long)
    scored = labels >= 0
    nll = -logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    smooth = -logp.sum(-1)
    per_pos = (1.0 - EPS) * nll + (EPS / v) * smooth
    return per_pos[scored].sum()


def step(params, dtype):
    """(loss, dict NAME -> gradient) of one step, in dtype."""
    model = vt.build("small", params, dtype=dtype)
    names = list(vt.param_shapes(model.cfg))
    for k in names:
        model.p[k].requires_grad_(True)
    loss = loss_fn(model, BATCH)
    grads = torch.autograd.grad(loss, [model.p[k] for k in names])
    return loss.detach(), {k: g.detach() for k, g in zip(names, grads)}


def loss_at(params64, name, idx, value):
    """float64 loss with params64[name][idx] set to value."""
    p = dict(params64)
    p[name] = p[name].clone()
    p[name][idx] = value
    model = vt.build("small", p, dtype=torch.float64)
    with torch.no_grad():
        return float(loss_fn(model, BATCH))


def rel_err(a, b):
    """max |a-b| / (|b| + rms(b)), the shape of the C tests' tolerance."""
    a, b = a.double(), b.double()
    rms = b.pow(2).mean().sqrt()
    return float(((a - b).abs() / (b.abs() + rms)).max())


def main():
    arrays, _ = vt.read_safetensors(os.path.join(HERE, "small.safetensors"))
    loss64, g64 = step(arrays, torch.float64)
    loss32, g32 = step(arrays, torch.float32)
    assert torch.isfinite(loss64) and all(torch.isfinite(g).all() for g in g64.values())
    n_scored = sum(l >= 0 for row in BATCH["labels"] for l in row)
    print("loss (float64, sum over %d positions) = %.10f" % (n_scored, float(loss64)))

    # float32 vs float64. The attention key biases (*.k.b) have an
    # analytically zero gradient (softmax ignores a shift common to all of a
    # query's scores), so their float64 values are rounding noise (~1e-17)
    # and a per-tensor relative error means nothing there: they are measured
    # against the rms of all the gradients instead.
    e_loss = abs(float(loss32) - float(loss64)) / abs(float(loss64))
    grms = float(torch.cat([g.reshape(-1) for g in g64.values()]).pow(2).mean().sqrt())
    null = [k for k in g64 if k.endswith(".k.b")]
    assert len(null) == 6 and all(float(g64[k].abs().max()) < 1e-12 * grms for k in null)
    errs = {k: rel_err(g32[k], g64[k]) for k in g64 if k not in null}
    worst = max(errs, key=errs.get)
    e_null = max(float((g32[k].double() - g64[k]).abs().max()) for k in null) / grms
    e_glob = max(float(((g32[k].double() - g64[k]).abs() / (g64[k].abs() + grms)).max())
                 for k in g64)
    print("float32 vs float64: loss rel err %.2e" % e_loss)
    print("  grads, max |a-b|/(|b|+rms(b)) per tensor: %.2e (%s)" % (errs[worst], worst))
    print("  grads, max |a-b|/(|b|+rms of all grads): %.2e (rms of all grads %.4f)"
          % (e_glob, grms))
    print("  the %d *.k.b tensors: max |a-b| / rms of all grads %.2e"
          " (their max |float64 value| %.1e)"
          % (len(null), e_null, max(float(g64[k].abs().max()) for k in null)))
    if not (e_loss < 1e-6 and errs[worst] < 1e-5 and e_glob < 1e-5):
        sys.exit("float32 vs float64 error too large")
    rows = {k: torch.nonzero((g64[k] == 0).all(1)).reshape(-1).tolist()
            for k in ("encoder.embed.table", "decoder.embed.table")}
    print("embedding rows with zero gradient (words absent or only padding): %s"
          % rows)

    # finite differences (float64, central, h = 1e-5) on 3 random elements
    # with a nonzero gradient (not in the *.k.b tensors)
    params64 = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in arrays.items()}
    cands = [(k, i) for k, g in g64.items() if k not in null
             for i in torch.nonzero(g.reshape(-1)).reshape(-1).tolist()]
    rng = np.random.default_rng(7)
    h = 1e-5
    for c in rng.choice(len(cands), size=3, replace=False):
        name, flat = cands[int(c)]
        idx = tuple(int(i) for i in np.unravel_index(flat, tuple(g64[name].shape)))
        w = float(params64[name][idx])
        fd = (loss_at(params64, name, idx, w + h)
              - loss_at(params64, name, idx, w - h)) / (2 * h)
        ad = float(g64[name][idx])
        rel = abs(fd - ad) / abs(ad)
        print("finite diff %s%s: autograd %+.10e, fd %+.10e, rel err %.1e"
              % (name, list(idx), ad, fd, rel))
        if not rel < 1e-6:
            sys.exit("finite difference disagrees with autograd")

    out = {"src": np.array(BATCH["src"], np.int32),
           "src_len": np.array(BATCH["src_len"], np.int32),
           "tgt_in": np.array(BATCH["tgt_in"], np.int32),
           "tgt_len": np.array(BATCH["tgt_len"], np.int32),
           "labels": np.array(BATCH["labels"], np.int32),
           "loss": loss64.reshape(1).numpy().astype(np.float32)}
    for k, g in g64.items():
        out["grad." + k] = g.numpy().astype(np.float32)
    path = os.path.join(HERE, "small.train.golden.safetensors")
    vt.write_safetensors(path, out, {"vamos.model": "small"})
    back, _ = vt.read_safetensors(path)
    assert list(back) == list(out)
    assert all(back[k].dtype == v.dtype and np.array_equal(back[k], v)
               for k, v in out.items())
    print("wrote", os.path.normpath(path), "(%d tensors)" % len(out))


if __name__ == "__main__":
    main()
