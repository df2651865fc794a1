"""``ibtheory train``: train a network ensemble on a task, measure its layers, save RUN.nc (and a figure)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from .. import _validate, phases
from ..estimators.registry import ESTIMATORS, planes_in
from .task import add_task_options, make_task

#: TrainConfig fields that are not command-line options (set by the runner's split of repeats).
_NOT_OPTIONS = ("repeat_start",)


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(w) for w in text.replace(",", "-").split("-") if w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must look like 10-7-5-4-3, got {text!r}") from None


def _limits(text: str):
    if text == "adaptive":
        return text
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"limits must be 'LO,HI' or 'adaptive', got {text!r}") from None
    return (lo, hi)


def _config_fields() -> list:
    """The fields of :class:`ibtheory.nets.TrainConfig` that are options of ``ibtheory train``."""
    from ..nets import TrainConfig  # here, not at the top: it imports torch, which the other commands do not need

    return [f for f in dataclasses.fields(TrainConfig) if f.name not in _NOT_OPTIONS]


class _TrainParser(argparse.ArgumentParser):
    """The parser of ``ibtheory train``: one option per :class:`~ibtheory.nets.TrainConfig` field, with its default
    (the paper's setting), help and choices, added when the parser is first used (parsing or --help), because reading
    TrainConfig imports torch (about a second), which the other commands should not pay."""

    def _config_options(self) -> None:
        if self.__dict__.get("_has_config_options"):
            return
        self._has_config_options = True
        group = self.add_argument_group("training (defaults: the paper's setting, ibtheory.nets.TrainConfig)")
        for f in _config_fields():
            kind = f.metadata.get("type") or (_widths if isinstance(f.default, tuple) else type(f.default))
            shown = "-".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
            try:
                group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, default=f.default,
                                   choices=f.metadata.get("choices"), help=f"{f.metadata['help']} (default {shown})")
            except argparse.ArgumentError as exc:
                raise ValueError(f"TrainConfig field {f.name!r} clashes with an option of `{self.prog}` ({exc}); "
                                 "a task parameter may not take its name") from None

    def parse_known_args(self, args=None, namespace=None):
        self._config_options()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._config_options()
        return super().format_usage()

    def format_help(self) -> str:
        self._config_options()
        return super().format_help()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train R networks at once, information plane per layer and epoch -> RUN.nc",
                       description="Train an ensemble of networks on the paper's task (defaults: the paper's "
                       "setting) and save the run Dataset; an existing --out is resumed.")
    p.__class__ = _TrainParser  # adds the TrainConfig options (--hidden, --lr, --seed, --device, ...) on first use
    p.add_argument("--estimators", default="binning", help=f"comma list of {','.join(ESTIMATORS)}")
    p.add_argument("--n-bins", type=int, default=None, help="bins per unit (default 30; not with --bin-width)")
    p.add_argument("--limits", type=_limits, default=(-1.0, 1.0), help="'LO,HI' or 'adaptive' (default -1,1)")
    p.add_argument("--scheme", default="width", choices=["width", "mass", "idnns"],
                   help="binning grid: equal width, equal mass, or the authors' np.digitize grid (n_bins + 1 states, "
                   "fixed --limits) (default width)")
    p.add_argument("--bin-width", type=float, default=None,
                   help="fixed bin width instead of --n-bins: floor((a - anchor) / width) (Saxe et al.: 0.07)")
    p.add_argument("--anchor", type=float, default=None, help="anchor of --bin-width bins (default 0)")
    p.add_argument("--labels", default="exact", choices=["exact", "sampled"],
                   help="I(T;Y) of binning from the exact p(y|x) or one sampled label per pattern (default exact)")
    p.add_argument("--label-seed", type=int, default=0, help="seed of --labels sampled (default 0)")
    p.add_argument("--noise-var", type=float, default=0.1, help="kde: noise variance")
    p.add_argument("--keep-activations", action="store_true", help="store all activations (large)")
    p.add_argument("--out", default="run.nc", help="run file (.nc); resumed when it exists")
    p.add_argument("--checkpoint-seconds", type=float, default=60.0,
                   help="save --out at the first snapshot this long after the last save (default 60)")
    p.add_argument("--plot", default=None, help="also write the three-panel figure to this .png")
    p.add_argument("--no-progress", action="store_true")
    add_task_options(p, "--name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import nets

    _validate.writable_file(args.out, "--out")
    if args.plot:
        _validate.writable_file(args.plot, "--plot")
    task = make_task(args)
    ds = nets.train(
        task, **{f.name: getattr(args, f.name) for f in _config_fields()},
        estimators=tuple(e.strip() for e in args.estimators.split(",") if e.strip()),
        n_bins=args.n_bins, limits=args.limits, scheme=args.scheme, bin_width=args.bin_width, anchor=args.anchor,
        labels=args.labels, label_seed=args.label_seed, noise_var=args.noise_var,
        keep_activations=args.keep_activations, out=args.out,
        checkpoint_seconds=args.checkpoint_seconds, progress=False if args.no_progress else None,
    )
    print(f"wrote {Path(args.out)}")
    last = ds.isel(epoch=-1)
    print(f"epoch {int(last['epoch'])}: test accuracy {float(last['test_accuracy'].mean()):.4f} "
          f"(mean of {ds.sizes['repeat']} repeats)")
    if "I_XT" in ds:
        ph = phases.detect_phases(ds)
        print("layer  width  I(X;T) peak epoch  peak [bits]  final [bits]  SNR transition epoch")
        for layer in ph["layer"].values:
            r = ph.sel(layer=layer)
            print(f"{layer:5d}  {int(ds['width'].sel(layer=layer)):5d}  {int(r['turn_epoch']):17d}  "
                  f"{float(r['peak']):11.3f}  {float(r['final']):12.3f}  {float(r['transition_epoch']):20.0f}")
    if args.plot:
        from ..plots.plane import plot_run

        fig = plot_run(ds, planes_in(ds)[0].name)  # binning's plane when it was measured
        fig.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")
    return 0
