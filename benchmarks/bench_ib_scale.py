"""Benchmark: IB curves of random tables whose rows are all distinct (no sufficient-statistic reduction helps).

    python benchmarks/bench_ib_scale.py [--sizes 256 1024 4096] [--ny 2 10] [--n-betas 240] [--anneal-max 256]
                                        [--certify]  (certified |Y| = 3: --ny 3 --certify)
    python benchmarks/bench_ib_scale.py --sizes 20000 --ny 6 --reverse-only 2   (the |Y| > 2 reverse sweep alone)

Tables: p(x) ~ Dirichlet(1), rows p(y|x) ~ Dirichlet(0.5), seed 0.  Each case runs in its own process (so its peak
resident memory is its own) through ``ib_curve(method="forward")``; for |X| <= ``--anneal-max`` the annealed path
(``method="anneal"``, the previous solver) runs on the same table and betas in the same invocation, and the
largest difference of their Lagrangians (forward - anneal, bits; negative: forward lower) is printed.  dit and
embo are run on the same tables when importable (embo on |X| <= ``--peer-max``, dit on |X| <= 32; 20 betas up to
ours, embo's beta = beta ln 2), and how far their (I(X;T), I(T;Y)) points lie below our achievable curve is
printed (negative would mean a peer beat our curve); otherwise the line says they are not installed.

Prints per case: wall time (after the process's first curve, a 64-row one, whose own time is printed as "setup":
a process's first curve also loads the compiled kernels from their cache and xarray's optional modules, ~1 s
whatever the table), peak RSS, betas, clusters at the top, max certified gap (bits; -1: uncertified; with
the number of betas whose gap exceeds 1e-6 bits when there are any),
I(X;Y) - I(T;Y) at the largest beta, number of critical betas and their median precision.  The machine is shared:
run it twice and read the best.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import resource
import time

import numpy as np


def table(n_x: int, n_y: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(n_x))[:, None] * rng.dirichlet(0.5 * np.ones(n_y), size=n_x)


def _case(q, n_x, n_y, n_betas, method, certify=None):
    from ibtheory.ib import ib_curve

    t = time.perf_counter()  # a process's first curve also loads the compiled kernels and xarray's optional modules
    ib_curve(table(64, n_y, seed=1), n_betas=20, method=method, certify=certify)
    setup = time.perf_counter() - t
    p = table(n_x, n_y)
    t = time.perf_counter()
    c = ib_curve(p, n_betas=n_betas, method=method, certify=certify)
    wall = time.perf_counter() - t
    lag = c["lagrangian"].values.tolist()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    q.put(dict(wall=wall, setup=setup, rss_mb=rss, n_betas=int(c.sizes["beta"]),
               k_top=int(c["n_clusters"].values[-1]), max_gap=float(c.attrs["max_gap"]),
               n_above=int((c["gap"].values > 1e-6).sum()) if "gap" in c else 0,
               deficit=float(c.attrs["I_XY"] - c["I_TY"].values[-1]), n_crit=int(c.sizes["critical"]),
               prec=float(np.median(c["critical_precision"].values)) if c.sizes["critical"] else float("nan"),
               lagrangian=lag, betas=c["beta"].values.tolist(), hull_x=c["hull_I_XT"].values.tolist(),
               hull_y=c["hull_I_TY"].values.tolist()))


def _reverse_case(q, n_x, n_y, n_betas, refresh):
    """The |Y| > 2 reverse sweep alone (``ibtheory.ib._forward._reverse``, the curve's betas from the top down to
    where it stops), with supports refreshed where few clusters moved (``refresh``) or searched anew each time."""
    from threadpoolctl import threadpool_limits

    from ibtheory.ib import _carry, _forward, ib_curve
    from ibtheory.ib import _iterate as it
    from ibtheory.ib._problem import ib_problem
    from ibtheory.ib.curve import default_betas

    ib_curve(table(64, n_y, seed=1), n_betas=20)  # loads the compiled kernels
    if not refresh:
        _carry.HOT_SHARE = 0.0
    searches = [0]
    search = it.support

    def counted(*a, **k):
        searches[0] += 1
        return search(*a, **k)

    it.support = counted
    prob = ib_problem(table(n_x, n_y))
    betas = default_betas(prob, n_betas)
    t = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):  # as ib_curve runs it
        pts = _forward._reverse(prob, betas, 1e-12, 500, None)
    wall = time.perf_counter() - t
    idx = sorted(pts)
    q.put(dict(wall=wall, rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, n=len(idx),
               lowest=float(betas[idx[0]]), evals=int(sum(pts[i].iterations for i in idx)), searches=searches[0],
               lagrangian=[pts[i].lagrangian for i in idx]))


def reverse_only(sizes, nys, n_betas, timeout, repeats) -> None:
    """``--reverse-only``: the reverse sweep with refreshed supports against the same sweep searching anew (the
    baseline), alternating, ``repeats`` times each; best and median wall and their ratio."""
    print("| n_x | n_y | supports | walls s | best s | median s | betas (lowest) | map evaluations | searches | "
          "peak MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n_y in nys:
        for n in sizes:
            runs = {True: [], False: []}
            for _ in range(repeats):
                for refresh in (True, False):
                    runs[refresh].append(run_case(n, n_y, n_betas, None, timeout, _reverse_case,
                                                  (n, n_y, n_betas, refresh)))
            for refresh, rs in runs.items():
                done = [r for r in rs if r is not None]
                if not done:
                    print(f"| {n} | {n_y} | {'refreshed' if refresh else 'searched anew'} | > {timeout:.0f} (stopped) |"
                          " | | | | | |")
                    continue
                w = [r["wall"] for r in done]
                r = done[0]
                print(f"| {n} | {n_y} | {'refreshed' if refresh else 'searched anew'} | "
                      f"{', '.join(f'{x:.1f}' for x in w)} | {min(w):.1f} | {np.median(w):.1f} | {r['n']} "
                      f"({r['lowest']:.1f}) | {r['evals']} | {r['searches']} | {max(x['rss_mb'] for x in done):.0f} |",
                      flush=True)
            new, old = ([r for r in runs[k] if r is not None] for k in (True, False))
            if new and old and len(new[0]["lagrangian"]) == len(old[0]["lagrangian"]):
                d = np.array(new[0]["lagrangian"]) - np.array(old[0]["lagrangian"])
                bw, mw = (f([r["wall"] for r in new]) / f([r["wall"] for r in old]) for f in (min, np.median))
                print(f"  refreshed / searched anew: best {bw:.2f}, median {mw:.2f}; Lagrangian difference max "
                      f"{d.max():.2e}, min {d.min():.2e} bits", flush=True)


def _peer(q, n_x, n_y, name, beta_max):
    """embo (Zaslavsky's package) or dit's IBCurve on the same table: their (I(X;T), I(T;Y)) points in bits."""
    p = table(n_x, n_y)
    t = time.perf_counter()
    if name == "embo":
        from embo import InformationBottleneck

        ix, iy, _, _ = InformationBottleneck(pxy=p, maxbeta=beta_max, minbeta=1e-2, numbeta=20).get_bottleneck()
    else:
        import dit
        from dit.rate_distortion import IBCurve

        outcomes = [(i, j) for i in range(n_x) for j in range(n_y)]
        d = dit.Distribution(outcomes, p.ravel().tolist())
        c = IBCurve(d, rvs=[[0], [1]], beta_max=beta_max, beta_num=20)
        ix, iy = c.complexities, c.relevances
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    q.put(dict(wall=time.perf_counter() - t, rss_mb=rss, ix=np.asarray(ix, float).tolist(),
               iy=np.asarray(iy, float).tolist()))


def run_case(n_x, n_y, n_betas, method, timeout, target=None, args=(), certify=None):
    """``target(queue, *args)`` (default: the curve case) in a forked process; its result, or None when it failed or
    ran past ``timeout`` seconds."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=target or _case, args=(q,) + (args or (n_x, n_y, n_betas, method, certify)))
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.terminate()
        return None
    try:
        return q.get(timeout=5)
    except Exception:  # noqa: BLE001 (the child failed: reported as not finished)
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    ap.add_argument("--ny", type=int, nargs="+", default=[2])
    ap.add_argument("--n-betas", type=int, default=240)
    ap.add_argument("--anneal-max", type=int, default=256)
    ap.add_argument("--peer-max", type=int, default=128, help="largest |X| on which embo (and dit, |X| <= 32) run")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--peer-timeout", type=float, default=600.0)
    ap.add_argument("--certify", action="store_true", help="certify every curve (|Y| <= 3; default: |Y| = 2 only)")
    ap.add_argument("--reverse-only", type=int, metavar="REPEATS", default=0,
                    help="|Y| > 2: only the reverse sweep, refreshed supports against new searches, REPEATS times each")
    a = ap.parse_args()
    if a.reverse_only:
        reverse_only(a.sizes, a.ny, a.n_betas, a.timeout, a.reverse_only)
        return
    cert = True if a.certify else None
    peers = {m: "importable" if importlib.util.find_spec(m) else "not installed" for m in ("dit", "embo")}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"load average {os.getloadavg()[0]:.2f}; cores this run may use: {cores} (the solver's kernels run two "
          f"halves on two); peers: dit {peers['dit']}, embo {peers['embo']}")
    print("| n_x | n_y | solver | wall s | setup s | peak MB | betas | K top | max gap bits | I(X;Y)-I(T;Y) top | "
          "critical (median precision) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n_y in a.ny:
        for n in a.sizes:
            runs = {"forward": run_case(n, n_y, a.n_betas, "forward", a.timeout, certify=cert)}
            if n <= a.anneal_max:
                runs["anneal"] = run_case(n, n_y, a.n_betas, "anneal", a.timeout, certify=cert)
            for name, r in runs.items():
                if r is None:
                    print(f"| {n} | {n_y} | {name} | > {a.timeout:.0f} (stopped) | | | | | | | |")
                    continue
                above = f" ({r['n_above']} betas > 1e-6)" if r["n_above"] else ""
                print(f"| {n} | {n_y} | {name} | {r['wall']:.1f} | {r['setup']:.1f} | {r['rss_mb']:.0f} | "
                      f"{r['n_betas']} | {r['k_top']} | {r['max_gap']:.2e}{above} | {r['deficit']:.2e} | "
                      f"{r['n_crit']} ({r['prec']:.1e}) |", flush=True)
            for peer in (("embo", "dit") if n <= a.peer_max else ()):
                if peer == "dit" and n > 32:
                    continue
                if not importlib.util.find_spec(peer) or runs["forward"] is None:
                    continue
                f = runs["forward"]
                # embo's beta multiplies a divergence in bits where ours multiplies nats: beta_embo = beta ln 2
                r = run_case(n, n_y, 0, peer, a.peer_timeout, _peer, (n, n_y, peer, max(f["betas"]) * np.log(2)))
                if r is None:
                    print(f"| {n} | {n_y} | {peer} | > {a.peer_timeout:.0f} (stopped or failed) | | | | | | | |")
                    continue
                from ibtheory.ib._hull import hull_value

                ours = hull_value(np.array(f["hull_x"]), np.array(f["hull_y"]), np.array(r["ix"]))
                short = ours - np.array(r["iy"])
                print(f"| {n} | {n_y} | {peer} | {r['wall']:.1f} | | {r['rss_mb']:.0f} | {len(r['ix'])} | | | | |  "
                      f"{peer}'s points below our curve by {np.min(short):.2e} to {np.max(short):.2e} bits "
                      f"(negative: above it)", flush=True)
            if runs.get("anneal") and runs.get("forward"):
                f, o = runs["forward"], runs["anneal"]
                common = sorted(set(f["betas"]) & set(o["betas"]))
                lf = dict(zip(f["betas"], f["lagrangian"], strict=True))
                lo = dict(zip(o["betas"], o["lagrangian"], strict=True))
                d = [lf[b] - lo[b] for b in common]
                print(f"  forward - anneal Lagrangian over {len(common)} common betas: max {max(d):.2e}, "
                      f"min {min(d):.2e} bits", flush=True)
    print(json.dumps({"done": True}))


if __name__ == "__main__":
    main()
