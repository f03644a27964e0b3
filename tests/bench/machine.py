"""machine.py - what the benchmarks say about the machine they ran on."""
import os


def cpu_name():
    """The CPU model, family and model numbers, its widest vector
    instruction set (and VNNI), and its cores, from /proc/cpuinfo. AMD
    family 25 is Zen 3 or Zen 4: the instruction set tells them apart."""
    model, flags, fam, mod = "unknown CPU", set(), "?", "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k = k.strip()
                if k == "model name" and model == "unknown CPU":
                    model = v.strip()
                elif k == "flags" and not flags:
                    flags = set(v.split())
                elif k == "cpu family" and fam == "?":
                    fam = v.strip()
                elif k == "model" and mod == "?":
                    mod = v.strip()
    except OSError:
        pass
    isa = "AVX-512" if "avx512f" in flags else "AVX2+FMA" if {"avx2", "fma"} <= flags else "SSE only"
    vnni = ", VNNI" if flags & {"avx512_vnni", "avx_vnni"} else ""
    return "%s (family %s model %s), %s%s, %d cores" % (model, fam, mod, isa, vnni, os.cpu_count() or 0)
