"""make_golden.py - write the golden outputs the C tests compare against.

For each model (statquest, small) runs the PyTorch reference (vamos_torch.py)
on a fixed batch and writes tests/golden/<model>.golden.safetensors with
    src I32 [B,N], src_len I32 [B], tgt I32 [B,M], tgt_len I32 [B],
    encoder.output F32 [B,N,D], decoder.output F32 [B,M,V]
(decoder teacher-forced on tgt, with memory = encoder.output).

Weights: statquest uses models/statquest.safetensors (made by
models/fit_statquest.py); small gets seeded random weights written to
tests/golden/small.safetensors.

Run:  /usr/bin/python3 tests/golden/make_golden.py
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, HERE)
import vamos_torch as vt  # noqa: E402

torch.set_num_threads(1)

BATCHES = {
    # all rows full length (statquest's vocabulary has no padding word)
    "statquest": dict(src=[[1, 3], [2, 3]], src_len=[2, 2],
                      tgt=[[0, 2], [0, 1]], tgt_len=[2, 2]),
    # "the cat sat mat <eos>" / "a dog <eos>";  "<bos> el gato se" / "<bos> un"
    "small": dict(src=[[2, 3, 4, 6, 1], [7, 8, 1, 0, 0]], src_len=[5, 3],
                  tgt=[[2, 3, 4, 5], [2, 10, 0, 0]], tgt_len=[4, 2]),
}


def small_weights(seed=1234):
    """Random weights in which every tensor matters: matrices and embeddings
    N(0, 0.3), biases N(0, 0.2), layer-norm gains 1 + N(0, 0.2)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in vt.param_shapes(vt.small_config()).items():
        if name.endswith(".gain"):
            a = 1.0 + 0.2 * rng.standard_normal(shape)
        elif len(shape) == 1:
            a = 0.2 * rng.standard_normal(shape)
        else:
            a = 0.3 * rng.standard_normal(shape)
        out[name] = a.astype(np.float32)
    return out


def run(name, params, batch, dtype, use_torch_mha=False):
    model = vt.build(name, params, dtype=dtype, use_torch_mha=use_torch_mha)
    with torch.no_grad():
        enc = model.encoder(batch["src"], batch["src_len"])
        dec = model.decoder(batch["tgt"], batch["tgt_len"], enc, batch["src_len"])
    return enc, dec


def rel_err(a, b):
    """max |a-b| / (|b| + rms(b)), the shape of the C test's tolerance."""
    a, b = a.double(), b.double()
    rms = b.pow(2).mean().sqrt()
    return float(((a - b).abs() / (b.abs() + rms)).max())


def make(name, params):
    batch = BATCHES[name]
    enc, dec = run(name, params, batch, torch.float32)
    enc64, dec64 = run(name, params, batch, torch.float64)
    alt_enc, alt_dec = run(name, params, batch, torch.float64, use_torch_mha=True)
    errs = {"f32 vs f64 encoder": rel_err(enc, enc64),
            "f32 vs f64 decoder": rel_err(dec, dec64),
            "torch MHA encoder": rel_err(alt_enc, enc64),
            "torch MHA decoder": rel_err(alt_dec, dec64)}
    for k, e in errs.items():
        print("  %-20s rel err %.2e" % (k, e))
        if not e < 1e-6:
            sys.exit("%s: %s error too large" % (name, k))
    assert torch.isfinite(enc).all() and torch.isfinite(dec).all()
    out = {"src": np.array(batch["src"], np.int32),
           "src_len": np.array(batch["src_len"], np.int32),
           "tgt": np.array(batch["tgt"], np.int32),
           "tgt_len": np.array(batch["tgt_len"], np.int32),
           "encoder.output": enc.numpy(),
           "decoder.output": dec.numpy()}
    path = os.path.join(HERE, name + ".golden.safetensors")
    vt.write_safetensors(path, out, {"vamos.model": name})
    back, _ = vt.read_safetensors(path)
    assert all(np.array_equal(back[k], v) for k, v in out.items())
    print("  wrote", os.path.normpath(path), "encoder", list(enc.shape),
          "decoder", list(dec.shape))


def main():
    print("statquest")
    params, _ = vt.read_safetensors(os.path.join(ROOT, "models", "statquest.safetensors"))
    make("statquest", params)

    print("small")
    params = small_weights()
    path = os.path.join(HERE, "small.safetensors")
    vt.write_safetensors(path, params, {"vamos.model": "small"})
    print("  wrote", os.path.normpath(path))
    make("small", params)


if __name__ == "__main__":
    main()
