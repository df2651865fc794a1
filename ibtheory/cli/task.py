"""``ibtheory task``: build a task's exact p(x,y), print its information and save it as netCDF4.

This module also holds the task options that ``task``, ``curve``, ``solve`` and ``train`` share
(``add_task_name``, ``add_task_parameters``, ``make_task``): the names and one option per parameter
(``--info-bits`` for ``info_bits``) are read from :data:`ibtheory.tasks.BUILTIN` whenever a parser is built, so a
task added with :func:`ibtheory.tasks.register` is reachable from every command without editing them.
"""

from __future__ import annotations

import argparse

import xarray as xr

from .. import _validate, store, tasks

#: The task a command builds when none is named.
DEFAULT_TASK = "tishby"


def _task_name(text: str) -> str:
    """argparse type: the registered name of ``text`` (aliases and hyphens for underscores accepted)."""
    try:
        return tasks.resolve(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_task_name(parser, flag: str = "--name") -> None:
    """Add ``flag``, which built-in task (a name of :data:`ibtheory.tasks.BUILTIN`), to ``parser`` (or a group)."""
    listing = "; ".join(f"{name}: {t.help}" for name, t in tasks.BUILTIN.items())
    parser.add_argument(
        flag, type=_task_name, default=None, metavar="{" + ",".join(tasks.BUILTIN) + "}",
        help=f"built-in task (default {DEFAULT_TASK}). {listing}. Hyphens may replace underscores (binary-symmetric)")


def add_task_parameters(parser: argparse.ArgumentParser) -> None:
    """Add one option per parameter of the built-in tasks (``--info-bits`` for ``info_bits``), defaulting to None:
    the chosen task's own default.  Call it after the command's own options: ``ValueError`` naming the parameter
    when its option would clash with one of them."""
    for name, users in tasks.parameters().items():
        text = "; ".join(f"{task}: {p.help}" + ("" if p.default is None else f" (default {p.default})")
                         for task, p in users)
        try:
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=users[0][1].type, default=None,
                                help=text)
        except argparse.ArgumentError as exc:
            raise ValueError(f"parameter {name!r} of task(s) {[t for t, _ in users]} clashes with an option of "
                             f"`{parser.prog}` ({exc}); rename the parameter") from None


def add_task_options(parser: argparse.ArgumentParser, flag: str = "--name") -> None:
    """:func:`add_task_name` and :func:`add_task_parameters`, after the command's own options."""
    add_task_name(parser, flag)
    add_task_parameters(parser)


def task_choice(args: argparse.Namespace, flag: str = "--name") -> tuple[str, dict]:
    """(registered task name, its parameters given on the command line) from the options of
    :func:`add_task_options`; ``ValueError`` for a parameter of another task (``--rho`` with ``--name tishby``)."""
    name = tasks.resolve(getattr(args, flag.lstrip("-").replace("-", "_")) or DEFAULT_TASK)
    takes = tasks.BUILTIN[name].defaults
    params = tasks.parameters()
    given = {k: getattr(args, k) for k in params if getattr(args, k, None) is not None}
    other = [k for k in given if k not in takes]
    if other:
        k = other[0]
        owners = ", ".join(t for t, _ in params[k])
        raise ValueError(f"--{k.replace('_', '-')} applies to {flag} {owners}, not to {flag} {name}")
    return name, given


def make_task(args: argparse.Namespace, flag: str = "--name") -> xr.Dataset:
    """The task Dataset the options of :func:`add_task_options` describe."""
    name, given = task_choice(args, flag)
    return tasks.make(name, **given)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("task", help="build a task's exact p(x,y), print I(X;Y), H(Y), class count; save .nc")
    p.add_argument("--out", default=None, help="write the task to this .nc file")
    add_task_options(p, "--name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.out:
        _validate.writable_file(args.out, "--out")
    ds = make_task(args)
    classes = tasks.sufficient_classes(ds["p_xy"].values)
    print(f"task {ds.attrs['name']}: |X| = {ds.sizes['x']}, |Y| = {ds.sizes['y']}")
    if ds.attrs["name"] == "tishby":
        rule = "hard" if ds.attrs["rule"] == "hard" else f"soft, gamma = {ds.attrs['gamma']:.6g}"
        print(f"rule: {rule}; theta = {ds.attrs['theta']:.6f}, sd(f) = {ds.attrs['sd_f']:.6f}")
        print(f"distinct f values: {int(ds['f_class'].max()) + 1}, icosahedral orbits: {int(ds['orbit'].max()) + 1}")
    print(f"I(X;Y) = {ds.attrs['I_XY']:.6f} bits")
    print(f"H(Y) = {ds.attrs['H_Y']:.6f} bits")
    print(f"sufficient-statistic classes: {classes.max() + 1}")
    if ds.attrs["deterministic"]:
        print("labels are deterministic: the IB curve is the trivial min(I(X;T), H(Y))")
    if args.out:
        name, given = task_choice(args)
        config = {"command": "task", "name": name, **tasks.BUILTIN[name].defaults, **given, "out": args.out}
        path = store.save(store.with_provenance(ds, config=config), args.out)
        print(f"wrote {path}")
    return 0
