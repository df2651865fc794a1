"""Generate docs/reproduction.md from a finished ``ibtheory reproduce`` folder: the report's verdict table and
sections, with its PNG figures copied into docs/figures/ (prefixed ``repro_``) and the links rewritten.

Usage::

    ibtheory reproduce --quick --out repro --mnist-dir ../shared/data/mnist
    python scripts/reproduction_doc.py repro --note "wall time 4 min 10 s; load average 4.1 on 2 cores"
    ibtheory reproduce --size full --only sizes,depth --out repro-full      # some sections at the paper's size
    python scripts/reproduction_doc.py repro --note "..." --also repro-full --also-note "..."
    python scripts/reproduction_doc.py repro --keep-appended --also repro-full2 ...   # keep earlier full sections
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

INTRO = """# Reproduction: the paper's claims and their critiques, with verdicts

`ibtheory reproduce` runs one experiment per claim of Shwartz-Ziv & Tishby (2017, arXiv:1703.00810) and of its
critiques (Saxe et al. 2018; Goldfeld et al. 2019), and computes each verdict from the measured numbers by a rule
written in the docstring of `ibtheory/reproduce/<section>.py` and repeated in each section below. Verdicts read
"holds", "holds only under ..." (naming the layers, choices or conditions under which it holds), "does not hold
here" or "skipped". The rules (each module's ``RULE``):

{rules}
The numbers below come from the **quick** size: the paper's task, network and optimiser, but fewer repeats and
epochs (e.g. 6 repeats x 1,000 epochs instead of 50 x 10,000), so slow phenomena (compression of the middle layers,
the diffusion phase) may not have happened yet; the verdicts are those of this size, not of the paper's. Sections that
were also run at the **full** size (`ibtheory reproduce --size full --only ...`, the paper's 50 repeats x 10,000
epochs) follow the quick report, with their own numbers and verdicts. Re-generate this page with
`scripts/reproduction_doc.py`.

"""


def rules_table() -> str:
    """The verdict rule of every section, from the ``RULE`` constant of its module."""
    import importlib

    from ibtheory.reproduce import SECTIONS

    rows = ["| section | rule |", "|---|---|"]
    for name in SECTIONS:
        rows.append(f"| {name} | {importlib.import_module(f'ibtheory.reproduce.{name}').RULE} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("report_dir", help="output folder of ibtheory reproduce (holds report.md)")
    p.add_argument("--out", default=str(ROOT / "docs" / "reproduction.md"))
    p.add_argument("--figures", default=str(ROOT / "docs" / "figures"))
    p.add_argument("--note", default="", help="a line on how it was run (wall time, machine load)")
    p.add_argument("--also", action="append", default=[], help="another report folder (e.g. some sections at the "
                   "full size), appended after the first with its figures prefixed repro_<ALSO_PREFIX>_; repeatable")
    p.add_argument("--also-title", default="Full size", help="heading of the appended reports")
    p.add_argument("--also-note", action="append", default=[], help="how each appended report was run (in order)")
    p.add_argument("--also-prefix", default="full", help="figure-name prefix of the appended report")
    p.add_argument("--keep-appended", action="store_true", help="keep the appended reports already in --out (their "
                   "'# <also-title>: ...' sections and figures) before the new --also ones")
    args = p.parse_args(argv)
    src = Path(args.report_dir)
    report = src / "report.md"
    if not report.is_file():
        raise SystemExit(f"{report} does not exist: run ibtheory reproduce first")
    figs = Path(args.figures)
    figs.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    rel = Path(figs.resolve()).relative_to(out.resolve().parent) if figs.resolve().is_relative_to(
        out.resolve().parent) else figs.resolve()

    def body_of(folder: Path, prefix: str) -> str:
        def copy(m: re.Match) -> str:
            name = m.group(2)
            target = figs / f"repro_{prefix}{Path(name).name}"
            shutil.copyfile(folder / name, target)
            return f"![{m.group(1)}]({(rel / target.name).as_posix()})"

        body = (folder / "report.md").read_text().split("\n", 1)[1]  # drop the report's own title
        return re.sub(r"!\[([^\]]*)\]\(([^)]+\.png)\)", copy, body).lstrip("\n")

    note = f"*Run.* {args.note}\n\n" if args.note else ""
    text = INTRO.format(rules=rules_table()) + note + body_of(src, "")
    if args.keep_appended and out.is_file():
        old = out.read_text()
        m = re.search(rf"^# {re.escape(args.also_title)}: ", old, flags=re.M)
        if m:
            text += "\n" + old[m.start():].rstrip("\n") + "\n"
    for i, folder in enumerate(args.also):
        also = Path(folder)
        if not (also / "report.md").is_file():
            raise SystemExit(f"{also / 'report.md'} does not exist")
        names = re.findall(r"^\| \[(\w+)\]\(#", (also / "report.md").read_text(), flags=re.M)
        extra = body_of(also, f"{args.also_prefix}_").replace("\n## ", "\n### ")
        extra = re.sub(r"\[(\w+)\]\(#[^)]+\)", r"\1", extra)  # its table's anchors would hit the first report
        note2 = f"*Run.* {args.also_note[i]}\n\n" if i < len(args.also_note) else ""
        text += f"\n# {args.also_title}: {', '.join(names)}\n\n" + note2 + extra
    out.write_text(text)
    print(f"wrote {out} and {len(list(figs.glob('repro_*.png')))} figures in {figs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
