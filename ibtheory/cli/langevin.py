"""``ibtheory langevin``: simulate Langevin dynamics on a potential, compare with the exact Gibbs density and the
spectral gap, write langevin.nc and PNG figures."""

from __future__ import annotations

import argparse

import numpy as np

from .. import _validate, store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("langevin", help="simulate Langevin dynamics, compare with the Gibbs density; .nc + .png",
                       description=__doc__)
    p.add_argument("--potential", default="double-well", choices=["double-well", "quadratic"],
                   help="double-well h (x^2 - 1)^2 + a x, or quadratic k x^2 / 2 (1-D)")
    p.add_argument("--beta", type=float, default=4.0, help="inverse temperature (1 / energy units)")
    p.add_argument("--barrier", type=float, default=1.0, help="double well: barrier height h")
    p.add_argument("--tilt", type=float, default=0.0, help="double well: tilt a")
    p.add_argument("--stiffness", type=float, default=1.0, help="quadratic: curvature k")
    p.add_argument("--particles", type=int, default=100_000, help="number of particles")
    p.add_argument("--x0", type=float, default=-1.0, help="initial position of every particle")
    p.add_argument("--dt", type=float, default=0.01, help="time step")
    p.add_argument("--steps", type=int, default=1000, help="number of steps")
    p.add_argument("--scheme", default="leimkuhler-matthews", choices=["euler", "leimkuhler-matthews"])
    p.add_argument("--noise", default="numpy", choices=["numpy", "torch"], help="normal generator (see docs)")
    p.add_argument("--bins", type=int, default=60, help="histogram bins")
    p.add_argument("--range", type=float, nargs=2, default=(-2.5, 2.5), metavar=("LO", "HI"),
                   help="histogram range")
    p.add_argument("--records", type=int, default=100, help="about this many recorded times")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder (langevin.nc, density.png, free_energy.png)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import matplotlib.pyplot as plt

    from ..dynamics import DoubleWell, Quadratic, convergence, fit_decay_rate, gibbs, langevin, spectrum
    from ..plots.langevin import density_over_time, free_energy_decay

    out = _validate.writable_dir(args.out, "--out")
    records = _validate.integer(args.records, "--records", 1)
    if args.potential == "double-well":
        pot = DoubleWell(args.barrier, args.tilt)
    else:
        pot = Quadratic(args.stiffness)
    lo, hi = args.range
    if not hi > lo or args.bins < 2:
        raise ValueError("--range must have LO < HI and --bins >= 2")
    if args.particles < 1:
        raise ValueError("--particles must be positive")
    edges = np.linspace(lo, hi, args.bins + 1)
    ds = langevin(pot, np.full(args.particles, args.x0), args.beta, args.dt, args.steps, scheme=args.scheme,
                  record=("histogram", "moments"), bins=edges, every=max(1, args.steps // records),
                  seed=args.seed, noise=args.noise, progress=not args.no_progress)
    ds = convergence(ds, pot, args.beta)
    span = max(abs(lo), abs(hi), abs(args.x0)) + 1.5
    grid = np.linspace(-span, span, 2401)
    g = gibbs(pot, args.beta, grid)
    spec = spectrum(pot, args.beta, grid, k=3)
    ds["gibbs_density"] = g["density"].rename(x="x_fine")
    ds.attrs.update({"spectral_gap": spec.gap, "gibbs_free_energy": float(g["free_energy"]),
                     "gibbs_entropy_bits": float(g["entropy"])})
    mean = ds["position_mean"].sel(dim=0).values
    eq = float((g["density"] * g["x"]).integrate("x"))
    t = ds["time"].values
    dev = np.abs(mean - eq)
    window = (t > 0) & (dev > 0.05 * dev.max()) & (dev > 5 / np.sqrt(args.particles))
    rate = np.nan
    if window.sum() >= 3:
        t_min = t[window].min() + 0.2 * (t[window].max() - t[window].min())
        try:
            rate = fit_decay_rate(t, mean, t_min, t[window].max(), limit=eq)
        except ValueError:
            rate = np.nan
    ds.attrs["measured_decay_rate_of_mean"] = float(rate)
    config = {k: v for k, v in vars(args).items() if k != "func"}
    path = store.save(store.with_provenance(ds, config=config, seed=args.seed), out / "langevin.nc")
    fig = density_over_time(ds, g["density"])
    fig.savefig(out / "density.png", dpi=120)
    plt.close(fig)
    fig = free_energy_decay(ds, title=f"{args.potential}, beta = {args.beta:g}, {args.particles} particles, "
                            f"{args.scheme}, dt = {args.dt:g}")
    fig.savefig(out / "free_energy.png", dpi=120)
    plt.close(fig)
    print(f"potential {pot!r}, beta = {args.beta:g}, {args.particles} particles, {args.steps} steps of {args.dt:g}")
    print(f"final TV to Gibbs: {float(ds['tv'][-1]):.4f}; KL: {float(ds['kl'][-1]):.3g} bits")
    print(f"free energy: start {float(ds['free_energy'][0]):.4f}, end {float(ds['free_energy'][-1]):.4f}, "
          f"Gibbs (binned) {ds.attrs['gibbs_free_energy_binned']:.4f} (energy units)")
    print(f"Gibbs entropy {float(g['entropy']):.4f} bits; spectral gap {spec.gap:.4g} /time; measured decay rate "
          f"of E[x] {rate:.4g} /time")
    print(f"wrote {path}, {out / 'density.png'}, {out / 'free_energy.png'}")
    return 0
