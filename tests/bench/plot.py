#!/usr/bin/python3
"""plot.py - draw tests/bench/results/{matmul,attention}.txt as one SVG of
speed ratios (bars; 1 = as fast as the peer): matmul against OpenBLAS,
attention against the unfused kernels and, when attention_torch.py wrote
the file, against PyTorch. Plain SVG, no libraries.

    /usr/bin/python3 tests/bench/plot.py [--out docs/bench.svg]
"""
import argparse, os

HERE = os.path.dirname(os.path.abspath(__file__))


def rows(name):
    with open(os.path.join(HERE, "results", name)) as f:
        return [l.split() for l in f if l.strip() and not l.startswith("#")]


def bars(title, items, x0, y0, w, h):
    out = ['<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>' % (x0, y0 - 8, title)]
    top = max(2.0, max(v for _, v in items) * 1.1)
    bw = w / len(items)
    y1 = y0 + h
    one = y1 - h / top
    out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#c00" stroke-dasharray="4 3"/>' % (x0, one, x0 + w, one))
    out.append('<text x="%d" y="%.1f" font-size="10" fill="#c00">1.0 (peer)</text>' % (x0 + w + 4, one + 3))
    for i, (label, v) in enumerate(items):
        bh = h * v / top
        x = x0 + i * bw + bw * 0.15
        out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#6c8ebf"/>' % (x, y1 - bh, bw * 0.7, bh))
        out.append('<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle">%.2f</text>' % (x + bw * 0.35, y1 - bh - 3, v))
        out.append('<text x="%.1f" y="%.1f" font-size="9" text-anchor="end" transform="rotate(-40 %.1f %.1f)">%s</text>'
                   % (x + bw * 0.35, y1 + 12, x + bw * 0.35, y1 + 12, label))
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (x0, y1, x0 + w, y1))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(HERE)), "docs", "bench.svg"))
    a = ap.parse_args()
    mm = [("%s,%s,%s" % (r[0], r[1], r[2]), float(r[5])) for r in rows("matmul.txt")]
    ar = rows("attention.txt")
    at = [("%s %s" % (r[0], r[1]), float(r[4])) for r in ar]
    pt = [("%s %s" % (r[0], r[1]), float(r[6])) for r in ar if len(r) > 6]
    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="900" height="%d" font-family="Helvetica">' % (630 if pt else 330),
           '<rect width="900" height="%d" fill="white"/>' % (630 if pt else 330)]
    svg += bars("matmul (M,N,K): Vamos GFLOP/s / OpenBLAS", mm, 40, 40, 380, 200)
    svg += bars("attention (length, mask): unfused time / fused time", at, 480, 40, 340, 200)
    if pt:
        svg += bars("attention (length, mask): PyTorch time / Vamos fused time", pt, 480, 340, 340, 200)
    svg.append("</svg>")
    with open(a.out, "w") as f:
        f.write("\n".join(svg) + "\n")
    print("wrote", a.out)


if __name__ == "__main__":
    main()
