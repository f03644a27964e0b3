"""vamos_torch.py - a PyTorch reference for the Vamos golden tests.

An independent implementation (plain PyTorch, float32 or float64) of the
models written in Vamos' DSL (lang/std/nn.vam, models/statquest.vam,
tests/golden/small.vam), plus safetensors reading and writing with the
per-tensor XXH3 checksums that the Vamos runtime requires, and greedy
decoders (greedy: re-runs the decoder over the whole prefix each step;
greedy_cached: one position per step with key/value caches, via
init_cache/decode_step).

Weights are kept in a flat dict NAME -> tensor, named as the DSL names them
(e.g. "encoder.layers.0.self_attn.q.w"); linear weights are [in, out].

Run with /usr/bin/python3 (python3-torch, numpy).
"""
import ctypes
import json
import math
import struct
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)

# ---------------------------------------------------------------- safetensors

_xxh = ctypes.CDLL("libxxhash.so.0")
_xxh.XXH3_64bits.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_xxh.XXH3_64bits.restype = ctypes.c_uint64

_DTYPES = {"F32": np.dtype("<f4"), "I32": np.dtype("<i4")}


def xxh3_hex(data: bytes) -> str:
    """XXH3_64bits of data as 16 lowercase hex digits."""
    buf = ctypes.create_string_buffer(data, len(data))
    return "%016x" % _xxh.XXH3_64bits(buf, len(data))


def _as_array(value):
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    a = np.asarray(value)
    if a.dtype.kind == "f":
        return np.ascontiguousarray(a, dtype="<f4"), "F32"
    if a.dtype.kind in "iub":
        return np.ascontiguousarray(a, dtype="<i4"), "I32"
    raise TypeError("unsupported dtype %s" % a.dtype)


def write_safetensors(path, tensors, metadata=None):
    """Write tensors (ordered dict NAME -> array/tensor; floats become F32,
    integers I32) with an xxh3:NAME checksum for each, plus metadata."""
    header, blobs, meta, off = {}, [], dict(metadata or {}), 0
    for name, value in tensors.items():
        a, dt = _as_array(value)
        raw = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape),
                        "data_offsets": [off, off + len(raw)]}
        meta["xxh3:" + name] = xxh3_hex(raw)
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode("ascii")
    text += b" " * ((-(8 + len(text))) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path, verify=True):
    """Return (dict NAME -> numpy array, metadata dict); checks checksums."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    blob = data[8 + n:]
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        raw = blob[b:end]
        if verify:
            want = meta.get("xxh3:" + name)
            if want != xxh3_hex(raw):
                raise ValueError("%s: checksum mismatch for %s" % (path, name))
        out[name] = np.frombuffer(raw, dtype=_DTYPES[e["dtype"]]).reshape(
            e["shape"]).copy()
    return out, meta


# --------------------------------------------------------------------- models

@dataclass
class Config:
    name: str
    src_vocab: int
    tgt_vocab: int
    d: int
    heads: int = 1
    layers: int = 1
    hidden: int = 0
    activation: str = "relu"      # "relu" | "gelu"
    embed_scale: bool = False     # multiply embeddings by sqrt(d)
    output: str = "softmax"       # "softmax" | "log_softmax" | "logits"
    style: str = "postnorm"       # "postnorm" layers | "residual" (statquest)
    out_name: str = "out"         # name of the final linear layer
    tied: bool = False            # decoder.table: the decoder's embedding and
                                  # (transposed, no bias) its output layer
    start: int = 0                # decoder start token
    eos: int = 0


def statquest_config():
    return Config("statquest", 4, 4, d=2, heads=1, layers=1,
                  output="softmax", style="residual", out_name="linear",
                  start=0, eos=0)


def small_config():
    return Config("small", 10, 12, d=8, heads=2, layers=2, hidden=16,
                  activation="gelu", embed_scale=True, output="log_softmax",
                  style="postnorm", out_name="out", start=2, eos=1)


def base_config():
    # models/base.vam: placeholder vocabulary <pad> <eos> <bos> <unk> w4 ...
    return Config("base", 32000, 32000, d=512, heads=8, layers=6, hidden=2048,
                  activation="relu", embed_scale=True, output="logits",
                  style="postnorm", out_name="out", start=2, eos=1)


CONFIGS = {"statquest": statquest_config, "small": small_config, "base": base_config}


def param_shapes(cfg):
    """Ordered dict NAME -> shape of every weight, as the DSL names them."""
    d, s = cfg.d, {}

    def lin(p, i, o):
        s[p + ".w"], s[p + ".b"] = [i, o], [o]

    def mha(p):
        for x in "qkvo":
            lin(p + "." + x, d, d)

    def norm(p):
        s[p + ".gain"], s[p + ".bias"] = [d], [d]

    def ff(p):
        lin(p + ".fc1", d, cfg.hidden)
        lin(p + ".fc2", cfg.hidden, d)

    s["encoder.embed.table"] = [cfg.src_vocab, d]
    if cfg.style == "residual":
        mha("encoder.self_attn")
    else:
        for i in range(cfg.layers):
            p = "encoder.layers.%d" % i
            mha(p + ".self_attn"); norm(p + ".norm1")
            ff(p + ".ff"); norm(p + ".norm2")
    s[dec_table(cfg)] = [cfg.tgt_vocab, d]
    if cfg.style == "residual":
        mha("decoder.self_attn")
        mha("decoder.cross_attn")
    else:
        for i in range(cfg.layers):
            p = "decoder.layers.%d" % i
            mha(p + ".self_attn"); norm(p + ".norm1")
            mha(p + ".cross_attn"); norm(p + ".norm2")
            ff(p + ".ff"); norm(p + ".norm3")
    if not cfg.tied:
        lin("decoder." + cfg.out_name, d, cfg.tgt_vocab)
    return s


def dec_table(cfg):
    return "decoder.table" if cfg.tied else "decoder.embed.table"


def padding_mask(lengths, n, dtype):
    """[b, 1, 1, n]: 0 where position < length, -inf beyond."""
    pos = torch.arange(n).unsqueeze(0)
    hide = pos >= torch.as_tensor(lengths).unsqueeze(1)
    m = torch.zeros(hide.shape, dtype=dtype).masked_fill(hide, float("-inf"))
    return m[:, None, None, :]


def causal_mask(n, dtype):
    """[n, n]: 0 on and below the diagonal, -inf above."""
    return torch.triu(torch.full((n, n), float("-inf"), dtype=dtype), 1)


def positional_encoding(n, d, dtype):
    pe = torch.zeros(n, d, dtype=torch.float64)
    pos = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float64)
                    * (-math.log(10000.0) / d))
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: d // 2])
    return pe.to(dtype)


class Model:
    """Functional transformer over a dict of weights (see param_shapes)."""

    def __init__(self, cfg, params, use_torch_mha=False):
        self.cfg = cfg
        self.p = params
        self.use_torch_mha = use_torch_mha

    def linear(self, x, name):
        return F.linear(x, self.p[name + ".w"].t(), self.p[name + ".b"])

    def norm(self, x, name):
        return F.layer_norm(x, (x.shape[-1],), self.p[name + ".gain"],
                            self.p[name + ".bias"], eps=1e-5)

    def ff(self, x, name):
        h = self.linear(x, name + ".fc1")
        h = F.gelu(h) if self.cfg.activation == "gelu" else F.relu(h)
        return self.linear(h, name + ".fc2")

    def mha(self, x, mem, name, mask):
        b, s, d = x.shape
        t, h = mem.shape[1], self.cfg.heads
        if self.use_torch_mha:
            return self._torch_mha(x, mem, name, mask)
        dh = d // h
        q = self.linear(x, name + ".q").view(b, s, h, dh).transpose(1, 2)
        k = self.linear(mem, name + ".k").view(b, t, h, dh).transpose(1, 2)
        v = self.linear(mem, name + ".v").view(b, t, h, dh).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(dh) + mask
        a = torch.softmax(scores, dim=-1) @ v
        return self.linear(a.transpose(1, 2).reshape(b, s, d), name + ".o")

    def _torch_mha(self, x, mem, name, mask):
        """The same attention through torch's own multi-head attention."""
        b, s, d = x.shape
        t, h = mem.shape[1], self.cfg.heads
        p = self.p
        m = mask.expand(b, h, s, t).reshape(b * h, s, t)
        out, _ = F.multi_head_attention_forward(
            x.transpose(0, 1), mem.transpose(0, 1), mem.transpose(0, 1),
            d, h, None,
            torch.cat([p[name + ".q.b"], p[name + ".k.b"], p[name + ".v.b"]]),
            None, None, False, 0.0,
            p[name + ".o.w"].t(), p[name + ".o.b"],
            training=False, need_weights=False, attn_mask=m,
            use_separate_proj_weight=True,
            q_proj_weight=p[name + ".q.w"].t(),
            k_proj_weight=p[name + ".k.w"].t(),
            v_proj_weight=p[name + ".v.w"].t())
        return out.transpose(0, 1)

    def embed(self, ids, table):
        w = self.p[table]
        x = F.embedding(torch.as_tensor(ids, dtype=torch.long), w)
        if self.cfg.embed_scale:
            x = x * math.sqrt(self.cfg.d)
        return x + positional_encoding(x.shape[1], self.cfg.d, w.dtype)

    def encoder(self, src, src_len):
        cfg = self.cfg
        x = self.embed(src, "encoder.embed.table")
        mask = padding_mask(src_len, x.shape[1], x.dtype)
        if cfg.style == "residual":
            return x + self.mha(x, x, "encoder.self_attn", mask)
        for i in range(cfg.layers):
            p = "encoder.layers.%d" % i
            x = self.norm(x + self.mha(x, x, p + ".self_attn", mask), p + ".norm1")
            x = self.norm(x + self.ff(x, p + ".ff"), p + ".norm2")
        return x

    def decoder_logits(self, tgt, tgt_len, memory, src_len):
        cfg = self.cfg
        x = self.embed(tgt, dec_table(cfg))
        m = x.shape[1]
        self_mask = padding_mask(tgt_len, m, x.dtype) + causal_mask(m, x.dtype)
        cross_mask = padding_mask(src_len, memory.shape[1], x.dtype)
        if cfg.style == "residual":
            x = x + self.mha(x, x, "decoder.self_attn", self_mask)
            x = x + self.mha(x, memory, "decoder.cross_attn", cross_mask)
        else:
            for i in range(cfg.layers):
                p = "decoder.layers.%d" % i
                x = self.norm(x + self.mha(x, x, p + ".self_attn", self_mask),
                              p + ".norm1")
                x = self.norm(x + self.mha(x, memory, p + ".cross_attn",
                                           cross_mask), p + ".norm2")
                x = self.norm(x + self.ff(x, p + ".ff"), p + ".norm3")
        return self.output(x)

    def output(self, x):
        if self.cfg.tied:
            return x @ self.p["decoder.table"].t()
        return self.linear(x, "decoder." + self.cfg.out_name)

    def decoder(self, tgt, tgt_len, memory, src_len):
        z = self.decoder_logits(tgt, tgt_len, memory, src_len)
        if self.cfg.output == "softmax":
            return torch.softmax(z, dim=-1)
        if self.cfg.output == "log_softmax":
            return torch.log_softmax(z, dim=-1)
        return z

    @torch.no_grad()
    def greedy(self, src, max_len=16):
        """Greedy decoding of one sentence (list of ids, no padding).
        Returns (emitted ids ending with eos if reached, probability of each
        emitted token)."""
        cfg = self.cfg
        mem = self.encoder([src], [len(src)])
        y, out, probs = [cfg.start], [], []
        for _ in range(max_len):
            z = self.decoder_logits([y], [len(y)], mem, [len(src)])[0, -1]
            p = torch.softmax(z.double(), dim=-1)
            tok = int(torch.argmax(z))
            out.append(tok)
            probs.append(float(p[tok]))
            if tok == cfg.eos:
                break
            y.append(tok)
        return out, probs

    # ------------------------------------------- incremental decoding (KV cache)
    #
    # The same math as decoder_logits, one target position at a time: the
    # cross-attention keys/values of the encoder memory are projected once
    # per layer, the self-attention keys/values of each new position are
    # written into preallocated per-layer caches of max_len rows, and only
    # the new position's logits are computed. Plain torch ops (use_torch_mha
    # does not apply here).

    def _heads(self, x):
        """[b, n, d] -> [b, h, n, dh]."""
        b, n, d = x.shape
        h = self.cfg.heads
        return x.view(b, n, h, d // h).transpose(1, 2)

    def _attend(self, x, k, v, name, mask=None):
        """Attention of x [b, s, d] over already projected k, v [b, h, t, dh]."""
        b, s, d = x.shape
        dh = d // self.cfg.heads
        q = self._heads(self.linear(x, name + ".q"))
        scores = q @ k.transpose(-2, -1) / math.sqrt(dh)
        if mask is not None:
            scores = scores + mask
        a = torch.softmax(scores, dim=-1) @ v
        return self.linear(a.transpose(1, 2).reshape(b, s, d), name + ".o")

    def _dec_layers(self):
        """Name prefixes of the decoder layers."""
        if self.cfg.style == "residual":
            return ["decoder"]
        return ["decoder.layers.%d" % i for i in range(self.cfg.layers)]

    @torch.no_grad()
    def init_cache(self, memory, src_len, max_len):
        """Decoding state for a batch: memory [b, t, d] from encoder(),
        src_len its lengths, room for max_len target positions."""
        b, t, d = memory.shape
        h = self.cfg.heads
        dt = memory.dtype
        st = {"pos": 0, "max_len": max_len,
              "cross_mask": padding_mask(src_len, t, dt),
              "pe": positional_encoding(max_len, d, dt),
              "cross": [], "self_k": [], "self_v": []}
        for p in self._dec_layers():
            st["cross"].append((self._heads(self.linear(memory, p + ".cross_attn.k")),
                                self._heads(self.linear(memory, p + ".cross_attn.v"))))
            st["self_k"].append(memory.new_empty(b, h, max_len, d // h))
            st["self_v"].append(memory.new_empty(b, h, max_len, d // h))
        return st

    @torch.no_grad()
    def decode_step(self, st, tokens):
        """Feed one token per sentence (ids [b]) at the next position; return
        that position's logits [b, tgt_vocab] (before cfg.output)."""
        cfg = self.cfg
        j = st["pos"]
        if j >= st["max_len"]:
            raise ValueError("decode_step: cache full (max_len %d)" % st["max_len"])
        w = self.p[dec_table(cfg)]
        x = F.embedding(torch.as_tensor(tokens, dtype=torch.long), w)[:, None, :]
        if cfg.embed_scale:
            x = x * math.sqrt(cfg.d)
        x = x + st["pe"][j]
        for i, p in enumerate(self._dec_layers()):
            kc, vc = st["self_k"][i], st["self_v"][i]
            kc[:, :, j:j + 1] = self._heads(self.linear(x, p + ".self_attn.k"))
            vc[:, :, j:j + 1] = self._heads(self.linear(x, p + ".self_attn.v"))
            # causal: the new position sees positions 0..j, all real
            sa = self._attend(x, kc[:, :, :j + 1], vc[:, :, :j + 1], p + ".self_attn")
            ck, cv = st["cross"][i]
            if cfg.style == "residual":
                x = x + sa
                x = x + self._attend(x, ck, cv, p + ".cross_attn", st["cross_mask"])
            else:
                x = self.norm(x + sa, p + ".norm1")
                x = self.norm(x + self._attend(x, ck, cv, p + ".cross_attn",
                                               st["cross_mask"]), p + ".norm2")
                x = self.norm(x + self.ff(x, p + ".ff"), p + ".norm3")
        st["pos"] = j + 1
        return self.output(x[:, 0])

    @torch.no_grad()
    def greedy_cached(self, src, src_len, max_len=16, stop_at_eos=False):
        """Greedy decoding of a batch with a KV cache: src is a padded batch
        of ids [b][t] with lengths src_len. Returns one list of ids per
        sentence (without the start token): max_len ids each, or, with
        stop_at_eos, up to and including the first eos (decoding stops when
        every sentence has emitted it)."""
        cfg = self.cfg
        mem = self.encoder(src, src_len)
        st = self.init_cache(mem, src_len, max_len)
        tok = torch.full((mem.shape[0],), cfg.start, dtype=torch.long)
        outs = [[] for _ in range(mem.shape[0])]
        done = [False] * len(outs)
        for _ in range(max_len):
            tok = torch.argmax(self.decode_step(st, tok), dim=-1)
            for k, t in enumerate(tok.tolist()):
                if not done[k]:
                    outs[k].append(t)
                    done[k] = stop_at_eos and t == cfg.eos
            if all(done):
                break
        return outs


def load_params(path, dtype=torch.float32):
    arrays, meta = read_safetensors(path)
    return {k: torch.tensor(v, dtype=dtype) for k, v in arrays.items()}, meta


def build(name, params, dtype=torch.float32, use_torch_mha=False):
    """Model `name` ("statquest" or "small") over params (dict of arrays or
    tensors), converted to dtype; checks names and shapes."""
    cfg = CONFIGS[name]()
    shapes = param_shapes(cfg)
    if set(shapes) != set(params):
        raise ValueError("weights differ: missing %s, extra %s" % (
            sorted(set(shapes) - set(params)), sorted(set(params) - set(shapes))))
    p = {}
    for k, shape in shapes.items():
        t = torch.as_tensor(params[k]).to(dtype)
        if list(t.shape) != shape:
            raise ValueError("%s: shape %s, want %s" % (k, list(t.shape), shape))
        p[k] = t
    return Model(cfg, p, use_torch_mha=use_torch_mha)
