#!/usr/bin/env python3
"""st_close.py A B [--tol T] [--skip SUFFIX]: do two safetensors files hold
the same tensors, equal within T (largest |a-b| / (1 + |a|))? Prints the
largest difference; exit 0 when within, 1 when not (or the names differ).
Tensors whose names end in SUFFIX are only checked for shape and finiteness:
for the key projection's bias of attention, whose gradient is zero in exact
arithmetic (it adds the same q.b to every score of a query, which softmax
cancels), so that Adam turns the rounding noise of its gradient into steps
of the learning rate's size, different for any other order of summation."""
import math
import json
import struct
import sys
from array import array


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    head = json.loads(data[8:8 + n])
    out = {}
    for name, t in head.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", (path, name, t["dtype"])
        a, b = t["data_offsets"]
        v = array("f")
        v.frombytes(data[8 + n + a:8 + n + b])
        out[name] = v
    return out


def main():
    args = sys.argv[1:]
    tol, skip = 1e-4, []
    while "--tol" in args or "--skip" in args:
        i = args.index("--tol") if "--tol" in args else args.index("--skip")
        if args[i] == "--tol":
            tol = float(args[i + 1])
        else:
            skip.append(args[i + 1])
        del args[i:i + 2]
    a, b = load(args[0]), load(args[1])
    if a.keys() != b.keys():
        print("tensor names differ:", sorted(a.keys() ^ b.keys()))
        return 1
    worst, where = 0.0, "-"
    for name in a:
        if len(a[name]) != len(b[name]):
            print(f"{name}: {len(a[name])} against {len(b[name])} values")
            return 1
        if any(name.endswith(k) for k in skip):
            if not all(math.isfinite(x) for x in a[name] + b[name]):
                print(f"{name}: not finite")
                return 1
            continue
        for x, y in zip(a[name], b[name]):
            d = abs(x - y) / (1 + abs(x))
            if not d <= worst:       # also catches NaN
                worst, where = d if d == d else float("inf"), name
    print(f"{len(a)} tensors, largest difference {worst:.3g} (in {where}), tolerance {tol:g}"
          + (f", skipped *{', *'.join(skip)}" if skip else ""))
    return 0 if worst <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
