"""Benchmark: the |Y| = 2 certificate with and without its curved cell bounds, on the points of one curve.

    python benchmarks/bench_ib_certificate.py [--n-x 4096] [--every 8] [--repeats 3]

The table is ``bench_ib_scale``'s (p(x) ~ Dirichlet(1), rows p(y|x) ~ Dirichlet(0.5), seed 0).  Its curve is solved
once (forward path, uncertified, 240 default betas); every ``--every``-th point is then certified by
``_certify_line.certify_lines`` (one beta at a time, as a repair would) twice per repeat: as shipped, and with the
curved cell bounds switched off (each cell bounded by the tangent lines alone, the certificate before them).  Prints
per variant the best and median wall time over the repeats, the cells, the largest gap (bits) and how many points
converged, and the ratios (lines alone / with curved bounds), measured in the same run.  (Without repairs some
points of the uncertified curve are not optimal: their gaps are large, and the same in both variants.)
"""

from __future__ import annotations

import argparse
import os
import time
from types import SimpleNamespace

import numpy as np
from bench_ib_scale import table  # benchmarks/ is the script's directory

from ibtheory.ib import _certify_line as cl
from ibtheory.ib import ib_curve
from ibtheory.ib._problem import ib_problem


def _solutions(n_x: int):
    p = table(n_x, 2)
    c = ib_curve(p, n_betas=240, method="forward", certify=False)
    prob = ib_problem(p)
    sols = []
    for k, b in enumerate(c["beta"].values):
        keep = c["p_t"].values[k] > 0
        sols.append((float(b), SimpleNamespace(p_t=c["p_t"].values[k][keep], decoder=c["decoder"].values[k][keep],
                                                I_XT=float(c["I_XT"].values[k]), I_TY=float(c["I_TY"].values[k]))))
    return prob, sols


def _certify_all(prob, sols) -> tuple[float, int, float, int]:
    t = time.perf_counter()
    certs = [cl.certify_lines(prob, [b], [s])[0] for b, s in sols]
    wall = time.perf_counter() - t
    return wall, sum(c.n_cells for c in certs), max(c.gap for c in certs), sum(c.converged for c in certs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-x", type=int, default=4096)
    ap.add_argument("--every", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; table {args.n_x} x 2")
    prob, sols = _solutions(args.n_x)
    sols = sols[:: args.every]
    curved = cl._curved_bounds
    results = {}
    for name, bound in (("curved + lines", curved), ("lines alone", lambda beta, sL, *_: np.full(sL.shape, np.inf))):
        cl._curved_bounds = bound
        runs = [_certify_all(prob, sols) for _ in range(args.repeats)]
        cl._curved_bounds = curved
        walls = sorted(r[0] for r in runs)
        results[name] = (walls[0], float(np.median(walls)), *runs[0][1:])
        print(f"{name:15s}: {len(sols)} points, best {walls[0]:.2f} s, median {np.median(walls):.2f} s, "
              f"{runs[0][1]} cells, max gap {runs[0][2]:.2e} bits, {runs[0][3]} converged")
    a, b = results["lines alone"], results["curved + lines"]
    print(f"ratio lines alone / curved + lines: time {a[0] / b[0]:.2f}x (best), {a[1] / b[1]:.2f}x (median); "
          f"cells {a[2] / b[2]:.2f}x")


if __name__ == "__main__":
    main()
