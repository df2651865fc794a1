"""``ibtheory curve``: the exact IB curve of a task (built in, or p(x,y) from a file), saved as netCDF4 and PNG."""

from __future__ import annotations

import argparse
import time

from .. import _validate, store, tables, tasks
from .task import add_task_name, add_task_parameters, make_task

#: The --help text on where p(x,y) comes from (shared by ``curve`` and ``solve``); {tasks} is filled in with the
#: built-in tasks and their parameter options (:func:`builtin_listing`).
INPUT_HELP = """\
where p(x,y) comes from (one of):
  --task NAME     a built-in task (default tishby) with its parameters:
{tasks}
  --p-xy FILE     your joint table, rows x and columns y, which must sum
                  to 1; a table of counts or weights n(x,y) needs
                  --normalize, which rescales it to n(x,y) / sum n.
                    .nc    a task file written by `ibtheory task --out`
                    .npy   a 2-D array saved by numpy.save
                    .csv .tsv .txt  a text table as a spreadsheet saves
                           it (UTF-8, a BOM allowed): cells separated by
                           commas, semicolons or tabs (with semicolons or
                           tabs 0,25 reads as 0.25), or by spaces; blank
                           lines and lines starting with "# " are
                           skipped.
                           Row 1 is a header of y labels when none of its
                           cells is a number or its first cell is empty;
                           column 1 holds x labels when none of its cells
                           is a number or the header starts empty.
  --samples FILE  observed pairs, one per row, in two columns x and y
                  (.csv .tsv .txt as above, or an (n, 2) .npy); symbols
                  are numbers or text; a header row is allowed.
                  p(x,y) = n(x,y) / n.
  --header yes|no overrides the header detection of a text file (e.g.
                  for a header of numbers such as 0,1,2)

example: counts typed in a spreadsheet and saved as counts.csv
  x,rain,sun
  wet,3,1
  dry,1,3
  -> ibtheory curve --p-xy counts.csv --normalize --out c.nc
"""

def builtin_listing(indent: int = 18) -> str:
    """One line per built-in task: its name and parameter options with their defaults (``ibtheory.tasks.BUILTIN``)."""
    lines = []
    for name, task in tasks.BUILTIN.items():
        opts = ", ".join(f"--{p.name.replace('_', '-')}" + ("" if p.default is None else f" {p.default}")
                         for p in task.params)
        lines.append(" " * indent + name + (f" ({opts})" if opts else ""))
    return "\n".join(lines)


def add_task_source(p: argparse.ArgumentParser) -> None:
    """The options that choose p(x,y): a built-in task, a table file or a file of samples (shared by ``curve`` and
    ``solve``); adds :data:`INPUT_HELP` to the command's --help.  The built-in tasks' parameter options are added by
    ``task.add_task_parameters`` after the command's own options."""
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = INPUT_HELP.format(tasks=builtin_listing())
    src = p.add_mutually_exclusive_group()
    add_task_name(src, "--task")
    src.add_argument("--p-xy", default=None, metavar="FILE",
                     help="joint table p(x,y), rows x, columns y: a task .nc, a .npy, or a .csv/.tsv/.txt table "
                          "(see below)")
    src.add_argument("--samples", default=None, metavar="FILE",
                     help="observed (x, y) pairs in two columns (.csv/.tsv/.txt/.npy): the empirical p(x,y)")
    p.add_argument("--normalize", action="store_true",
                   help="--p-xy: rescale a table of counts or weights to sum to 1")
    p.add_argument("--header", choices=["auto", "yes", "no"], default="auto",
                   help="--p-xy/--samples text file: whether row 1 is a header (default: auto, detected)")


def load_task_source(args: argparse.Namespace):
    """(task Dataset with ``p_xy``, its name) from the options of :func:`add_task_source`.

    ``ValueError`` for options that do not go together: built-in task parameters with a file, a parameter of
    another built-in task (``--rho`` with ``--task tishby``), ``--normalize`` without a ``--p-xy`` table, and
    ``--header`` without a file.
    """
    given = [k for k in tasks.parameters() if getattr(args, k, None) is not None]
    flags = ", ".join(f"--{k.replace('_', '-')}" for k in given)
    header = {"auto": None, "yes": True, "no": False}[args.header]
    if args.p_xy or args.samples:
        flag, path = ("--p-xy", args.p_xy) if args.p_xy else ("--samples", args.samples)
        if given:
            raise ValueError(f"{flags} {'sets' if len(given) == 1 else 'set'} a built-in task's parameters and cannot "
                             f"be combined with {flag} (p(x,y) comes from the file)")
        if args.p_xy:
            ds = tables.read_joint(path, normalize=args.normalize, header=header, name=flag)
        else:
            if args.normalize:
                raise ValueError("--normalize applies to a --p-xy table; --samples gives p(x,y) = n(x,y) / n "
                                 "already")
            ds = tables.read_samples(path, header=header, name=flag)
        if "read_as" in ds.attrs:
            print(f"read {path}: {ds.attrs['read_as']}")
        return ds, ds.attrs.get("name", path)
    if args.normalize:
        raise ValueError("--normalize applies to a --p-xy table (counts or weights), not to a built-in task")
    if header is not None:
        raise ValueError("--header applies to a --p-xy or --samples text file, not to a built-in task")
    ds = make_task(args, "--task")
    return ds, ds.attrs["name"]


def check_outputs(args: argparse.Namespace, *names: str) -> None:
    """Check, before any work, that the files given as ``--NAME`` options can be written."""
    for name in names:
        value = getattr(args, name, None)
        if value:
            _validate.writable_file(value, f"--{name.replace('_', '-')}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curve", help="exact IB curve of a task: encoders, critical betas, certified band; .nc/.png")
    add_task_source(p)
    p.add_argument("--n-betas", type=int, default=240, help="betas of the automatic grid (before refinement)")
    p.add_argument("--no-certify", action="store_true", help="skip the optimality certificate")
    p.add_argument("--method", choices=["auto", "anneal", "forward"], default="auto",
                   help="anneal: from one cluster per class (|S|^2 work); forward: stability-predicted splits, "
                        "linear in |S| x clusters; auto: forward above 256 classes (default)")
    p.add_argument("--out", default=None, help="write the curve Dataset to this .nc file")
    p.add_argument("--plot", default=None, help="write the figure to this .png file")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    add_task_parameters(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..ib import ib_curve

    check_outputs(args, "out", "plot")
    ds, name = load_task_source(args)
    t0 = time.perf_counter()
    curve = ib_curve(ds["p_xy"].values, n_betas=args.n_betas, certify=False if args.no_certify else None,
                     progress=args.progress, method=args.method)
    wall = time.perf_counter() - t0
    print(f"task {name}: I(X;Y) = {curve.attrs['I_XY']:.6f} bits, {curve.attrs['n_classes']} sufficient classes")
    print(f"{curve.sizes['beta']} betas in {wall:.2f} s ({curve.attrs['method']} path); {curve.sizes['critical']} "
          "critical betas: " + ", ".join(f"{b:.4g} (+-{100 * e:.2g} %)" for b, e in
                                         zip(curve['critical_betas'].values, curve['critical_precision'].values,
                                             strict=True)))
    if "gap" in curve:
        print(f"largest certified gap: {float(curve['gap'].max()):.3g} bits")
    if curve.attrs["deterministic"]:
        print(curve.attrs["explanation"])
    if args.out:
        config = {k: v for k, v in vars(args).items() if k != "func"}
        out = store.with_provenance(curve, config=config, seed=0)
        print(f"wrote {store.save(out, args.out)}")
    if args.plot:
        import matplotlib.pyplot as plt

        from ..plots.curve import plot_ib_curve

        fig = plot_ib_curve(curve, title=f"IB curve of {name}, I(X;Y) = {curve.attrs['I_XY']:.3f} bits")
        fig.savefig(args.plot, dpi=120)
        plt.close(fig)
        print(f"wrote {args.plot}")
    return 0
