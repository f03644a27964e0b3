"""machine.py - what the benchmarks say about the machine they ran on."""
import os


def cpu_name():
    """The CPU model, family and model numbers (and, for AMD's EPYC, the
    Zen generation), its widest vector instruction set (and VNNI), and its
    cores, from /proc/cpuinfo. AMD family 25 is Zen 3 or Zen 4: the
    instruction set tells them apart; family 26 is Zen 5, whose FMA units
    are 512 bits wide (a Zen 4 splits a 512-bit FMA in two)."""
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
    zen = ""
    if "AMD" in model:
        zen = {"25": ", Zen 4" if "avx512f" in flags else ", Zen 3", "26": ", Zen 5"}.get(fam, "")
    return "%s (family %s model %s%s), %s%s, %d cores" % (model, fam, mod, zen, isa, vnni, os.cpu_count() or 0)


def blas_core():
    """The kernels OpenBLAS chose for this CPU, in the libblas.so.3 that
    Debian's PyTorch (BLAS_INFO=generic) calls for its products, or None
    when that BLAS is not OpenBLAS. Debian 12's OpenBLAS 0.3.21 picked
    its AVX2 kernels (Haswell) on a Zen 5, which has AVX-512."""
    import ctypes
    try:
        f = ctypes.CDLL("libblas.so.3").openblas_get_corename
    except (OSError, AttributeError):
        return None
    f.restype = ctypes.c_char_p
    return f().decode()
