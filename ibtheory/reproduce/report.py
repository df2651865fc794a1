"""The reproduction report: one :class:`Section` per claim, collected by :func:`run_all` into ``DIR/report.md``.

Every claim module of :mod:`ibtheory.reproduce` exposes ``run(out: Path, size: str, seed: int, *, device: str =
"cpu") -> Section`` (``device``: the torch device its networks train on; MNIST also takes ``mnist_dir``).  A section
carries the claim, the measured numbers, its figures, and a verdict computed from the numbers by the rule
written in that module's docstring (the rule's text travels with the section, so the report shows both).  Verdicts
start with one of the words in :data:`VERDICT_KINDS`: "holds", "holds only under ...", "does not hold here", or
"skipped" (a section that lacks its data, e.g. MNIST without ``--mnist-dir``).

Sizes: "tiny" (seconds per section, for tests), "quick" (all sections together in about five minutes on a 2-core
machine), "full" (the paper's sizes: 50 repeats x 10,000 epochs; hours).
"""

from __future__ import annotations

import argparse
import importlib
import math
import platform
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._validate import show

__all__ = ["Section", "SIZES", "SECTIONS", "VERDICT_KINDS", "run_all", "write_report", "check_size", "section_main"]

#: The run sizes every section understands.
SIZES = ("tiny", "quick", "full")
#: Section names in report order (each is a module of :mod:`ibtheory.reproduce`).
SECTIONS = ("plane", "sizes", "gradients", "depth", "bound", "langevin", "critiques", "mnist", "early_stopping")
#: The first words a verdict may start with.
VERDICT_KINDS = ("holds only under", "holds", "does not hold here", "skipped")


@dataclass
class Section:
    """One claim's result.

    name : module name (e.g. "plane"); title : heading; claim : the claim under test, one sentence;
    numbers : measured values (floats, ints, strings or short lists; information in bits, named ``..._bits``);
    figures : PNG paths (inside the output folder); verdict : computed by the rule; rule : the rule's text;
    notes : caveats of this size (what was shrunk); seconds : wall time of the section;
    results : the .nc files written; table : a markdown table shown after the figures (e.g. a matrix of verdicts).

    >>> Section("demo", "Demo", "a gap is small", {"gap_bits": 0.01}, [], "holds", "gap <= 0.05 bits").verdict
    'holds'
    """

    name: str
    title: str
    claim: str
    numbers: dict
    figures: list[Path]
    verdict: str
    rule: str
    notes: str = ""
    seconds: float = math.nan
    results: list[Path] = field(default_factory=list)
    table: str = ""

    def __post_init__(self) -> None:
        if not any(self.verdict.startswith(k) for k in VERDICT_KINDS):
            raise ValueError(f"verdict of section {self.name!r} must start with one of {VERDICT_KINDS}, "
                             f"got {show(self.verdict)}")


def check_size(size: str) -> str:
    """Validate a size name; returns it."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {show(size)}")
    return size


def _fmt(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return str(f)
        return f"{f:.4g}"
    if isinstance(v, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _anchor(title: str) -> str:
    """GitHub-style heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


def _section_md(sec: Section, out: Path) -> list[str]:
    lines = [f"## {sec.title}", "", f"**Claim.** {sec.claim}", "", f"**Verdict: {sec.verdict}**", "",
             f"*Rule.* {sec.rule}", ""]
    for fig in sec.figures:
        rel = Path(fig).resolve().relative_to(out.resolve()) if Path(fig).resolve().is_relative_to(
            out.resolve()) else Path(fig)
        lines += [f"![{sec.name}]({rel.as_posix()})", ""]
    if sec.table:
        lines += [sec.table, ""]
    if sec.numbers:
        lines += ["| quantity | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in sec.numbers.items()]
        lines.append("")
    if sec.notes:
        lines += [f"*Notes.* {sec.notes}", ""]
    if sec.results:
        lines += ["Results: " + ", ".join(f"`{Path(p).name}`" for p in sec.results), ""]
    lines += [f"({sec.seconds:.1f} s)", ""]
    return lines


def write_report(sections: Sequence[Section], out: str | Path, size: str, seed: int, seconds: float) -> Path:
    """Write ``out/report.md``: a summary table of verdicts, then one part per section; returns its path."""
    out = Path(out)
    lines = ["# ibtheory reproduction report", "",
             f"Size **{size}**, seed {seed}, total {seconds:.1f} s on {platform.node() or 'this machine'} "
             f"({platform.processor() or platform.machine()}). Information in bits. Verdicts are computed from "
             "the numbers by the rule shown in each section (see `ibtheory/reproduce/<section>.py`).", "",
             "| section | claim | verdict | time [s] |", "|---|---|---|---|"]
    for s in sections:
        lines.append(f"| [{s.name}](#{_anchor(s.title)}) | {s.claim} | {s.verdict} | {s.seconds:.1f} |")
    lines.append("")
    for s in sections:
        lines += _section_md(s, out)
    path = out / "report.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def run_all(out: str | Path, size: str = "quick", seed: int = 0, mnist_dir: str | Path | None = None,
            only: Sequence[str] | None = None, log=print, device: str = "cpu",
            executor=None) -> tuple[Path, list[Section]]:
    """Run the sections (all, or those named in ``only``) into ``out`` and write ``out/report.md``.

    Returns the report's path and the sections.  ``mnist_dir`` is passed to the MNIST section (skipped without it).
    ``device`` ("cpu", "cuda" or "cuda:N") is where every section trains its networks; an unknown device, or CUDA
    where torch sees none, is a ``ValueError`` before any section runs (as are a bad ``size`` and ``only``).
    ``executor`` (an :class:`ibtheory.runner.Executor`; default in-process) runs the rows of the critics' matrix.
    """
    from ..nets.loop import check_device  # here: naming the sections (the command line's parser) must not load torch

    check_size(size)
    names = list(SECTIONS if not only else only)
    bad = [n for n in names if n not in SECTIONS]
    if bad:
        raise ValueError(f"only: unknown section(s) {bad}; choose from {list(SECTIONS)}")
    device = check_device(device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    sections = []
    for name in names:
        mod = importlib.import_module(f"{__package__}.{name}")
        t0 = time.perf_counter()
        extra = {"mnist_dir": mnist_dir} if name == "mnist" else {"executor": executor} if name == "critiques" else {}
        sec = mod.run(out, size, seed, device=device, **extra)
        sec.seconds = time.perf_counter() - t0
        if log:
            log(f"[{name}] {sec.verdict} ({sec.seconds:.1f} s)")
        sections.append(sec)
    path = write_report(sections, out, size, seed, time.perf_counter() - t_all)
    return path, sections


def section_main(name: str, argv: Sequence[str] | None = None) -> int:
    """Command line of one section (the ``experiments/<name>.py`` scripts): ``--quick``, ``--size``, ``--out``,
    ``--seed``, ``--device`` (and ``--mnist-dir`` for MNIST); runs it, writes a one-section report.md and prints the
    numbers."""
    if name not in SECTIONS:
        raise ValueError(f"name must be one of {SECTIONS}, got {show(name)}")
    mod = importlib.import_module(f"{__package__}.{name}")
    p = argparse.ArgumentParser(description=(mod.__doc__ or name).split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="quick size (about a minute)")
    p.add_argument("--size", choices=SIZES, default=None, help="tiny | quick | full (default: full, or --quick)")
    p.add_argument("--out", default=f"results/{name}", help=f"output folder (default: results/{name})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="torch device of the training: cpu, cuda or cuda:N (default cpu)")
    if name == "mnist":
        p.add_argument("--mnist-dir", default=None, help="folder with the t10k IDX files")
    args = p.parse_args(argv)
    size = args.size or ("quick" if args.quick else "full")
    path, (sec,) = run_all(args.out, size, args.seed, mnist_dir=getattr(args, "mnist_dir", None), only=[name],
                           log=None, device=args.device)
    print(f"{sec.title} ({size}): {sec.verdict}")
    for key, value in sec.numbers.items():
        print(f"  {key}: {_fmt(value)}")
    print(f"report: {path.resolve()}")
    return 0
