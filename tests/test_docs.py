"""The docs cannot rot: the site builds with ``mkdocs build --strict`` and has an API page for every public module,
the floors of docs/architecture.md are the package's imports, and the Python blocks of the tutorial and README run.

Conventions (docs/tutorial.md says so too): every fenced ```python block of docs/tutorial.md and README.md runs, in
its own namespace, in a temporary folder; a block preceded by the line ``<!-- docs-test: skip -->`` is not run; a
``print(...)`` line whose comment ends in ``-> value`` must print ``value`` (whitespace-normalised; a trailing
"bits" unit in the comment is ignored; a number may differ from the page by one unit of its last printed digit).
"""

import ast
import html
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SKIP_MARK = "<!-- docs-test: skip -->"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


_DIRECTIVE = re.compile(r"^::: (ibtheory[\w.]*)\s*$", re.M)


def public_modules() -> list[str]:
    """Every module of the package without a leading underscore in its path, the package itself excluded."""
    names = set()
    for path in (ROOT / "ibtheory").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if len(parts) > 1 and not any(part.startswith("_") for part in parts[1:]):
            names.add(".".join(parts))
    return sorted(names)


def api_directives() -> dict[str, str]:
    """{module rendered by a ``::: module`` line: the docs/api page holding it}."""
    out = {}
    for page in sorted((ROOT / "docs" / "api").rglob("*.md")):
        for name in _DIRECTIVE.findall(page.read_text()):
            out[name] = page.relative_to(ROOT / "docs").as_posix()
    return out


def test_every_public_module_has_an_api_page_in_the_nav():
    directives = api_directives()
    missing = sorted(set(public_modules()) - set(directives))
    assert not missing, (f"public modules without an API page: {missing}; add `::: <module>` to a page of "
                         "docs/api/ (a new page also needs its line in the nav of mkdocs.yml)")
    stale = sorted(set(directives) - set(public_modules()))
    assert not stale, f"docs/api renders modules that are not public modules of the package: {stale}"
    config = (ROOT / "mkdocs.yml").read_text()
    not_in_nav = sorted({page for page in directives.values() if page not in config})
    assert not not_in_nav, f"API pages missing from the nav of mkdocs.yml: {not_in_nav}"


def _site_tools_missing() -> str | None:
    """The first tool of the ``docs`` extra that is not installed, or None."""
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except ModuleNotFoundError:  # the parent package of a dotted name is missing
            return module
    return None


@pytest.mark.skipif(_site_tools_missing() is not None,
                    reason=f"{_site_tools_missing()} is not installed: `pip install -e '.[docs]'` to build the site")
def test_the_site_builds_strictly_with_every_module_and_its_formulas(tmp_path):
    """``mkdocs build --strict`` (about 5 s): every page in the nav, every link, anchor and cross-reference resolves,
    every docstring parses; then each public module has its anchor and a docstring's displayed formula is a block."""
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    log = "\n".join(line for line in (proc.stdout + proc.stderr).splitlines() if not line.startswith("INFO"))
    assert proc.returncode == 0, f"mkdocs build --strict failed (exit {proc.returncode}):\n{log[-6000:]}"
    pages = {p.relative_to(site).as_posix(): p.read_text() for p in (site / "api").rglob("*.html")}
    anchors = set(re.findall(r'id="(ibtheory[\w.]*)"', "".join(pages.values())))
    missing = sorted(set(public_modules()) - anchors)
    assert not missing, f"public modules with no anchor in the built API pages: {missing}"
    undocumented = []
    for name in public_modules():
        if name.startswith("ibtheory.cli."):  # subcommands: their pages show the command, not register/run
            continue
        module = importlib.import_module(name)
        for item in getattr(module, "__all__", ()):
            obj = getattr(module, item)
            # documented under this module, where it is defined, or (a constant) under a module holding the same object
            homes = {f"{name}.{item}", f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}",
                     getattr(obj, "__name__", "") if inspect.ismodule(obj) else ""}
            homes |= {f"{m}.{item}" for m, mod in list(sys.modules.items())
                      if m.startswith("ibtheory.") and getattr(mod, item, None) is obj}
            if not homes & anchors:
                undocumented.append(f"{name}.{item}")
    assert not undocumented, f"names of __all__ rendered nowhere in the API pages: {undocumented}"
    compare = pages["api/compare/index.html"]
    assert 'id="ibtheory.compare.consistency.self_consistency"' in compare
    from ibtheory.compare import consistency

    # the module's displayed formulas (indented lines of its docstring) appear as preformatted blocks
    formulas = [line.strip() for line in inspect.getdoc(consistency).splitlines() if line.startswith("    ")]
    blocks = " ".join(html.unescape(b) for b in re.findall(r"<pre><code>(.*?)</code></pre>", compare, re.S))
    assert formulas and all(f in blocks for f in formulas), f"formulas not shown as blocks: {formulas}"
    theory = (site / "theory" / "index.html").read_text()
    assert theory.count('<div class="arithmatex">') >= 5, "the theory page's $$ equations are not typeset"


@pytest.mark.skipif(_site_tools_missing() is not None, reason="the docs extra is not installed (griffe)")
def test_the_docstring_rewriter_of_the_site_known_cases():
    """docs/api/griffe_markdown.py: house-style docstrings in the shape mkdocstrings' numpy parser reads."""
    spec = importlib.util.spec_from_file_location("griffe_markdown", ROOT / "docs" / "api" / "griffe_markdown.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Unresolvable:  # no name resolves: roles become plain code
        def resolve(self, name):
            raise NameError(name)

    class Loader:
        modules_collection: dict = {}

    doc = ("Summary with :func:`numpy.sum` and <choices>, beta* = 2*pi.\n\n    F = a * <b>\n\n>>> 1 + 1\n2\n\n"
           "Parameters\n----------\na, b : the two inputs\n    in bits.\nn : int\n\nReturns\n-------\n"
           "Dataset with things\nover two lines.\n\nRaises\n------\nValueError : when bad.\n\nExample: one more.\n\n"
           ">>> 2\n2")
    want = ("Summary with `numpy.sum` and &lt;choices>, beta* = 2*pi.\n\n    F = a * <b>\n\n"
            "```pycon\n>>> 1 + 1\n2\n```\n\nParameters\n----------\n"
            "a\n    the two inputs\n    in bits.\nb\n    the two inputs\n    in bits.\nn : int\n\n"
            "Returns\n-------\n:\n    Dataset with things\n    over two lines.\n\nRaises\n------\nValueError\n"
            "    when bad.\n\nExamples\n--------\nOne more.\n\n>>> 2\n2")
    assert module._Rewriter(Unresolvable(), Loader()).rewrite(doc) == want


def _floors() -> dict[str, int]:
    """{top-level module or subpackage: floor} from the table of docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    return {name: int(floor) for floor, cell in re.findall(r"^\| (\d+) \| ([^|]+) \|", text, re.M)
            for name in re.findall(r"`(\w+)`", cell)}


def imported_units(source: str, package: tuple[str, ...]) -> set[str]:
    """Top-level units ``ibtheory.<unit>`` imported, at the top or lazily, by a module of ``package`` (its source)."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            full = base + (node.module.split(".") if node.module else [])
            targets = [full + [alias.name] for alias in node.names] if len(full) == 1 else [full]
        elif isinstance(node, ast.Import):
            targets = [alias.name.split(".") for alias in node.names]
        else:
            continue
        out |= {t[1] for t in targets if len(t) > 1 and t[0] == "ibtheory"}
    return out


def test_imported_units_resolves_relative_absolute_and_lazy_imports():
    src = ("from .. import phases\nfrom ..plots.plane import f\nfrom .report import S\nimport ibtheory.nets.run\n"
           "import numpy as np\ndef g():\n    from ibtheory import tasks, store\n    from ...x import y\n")
    assert imported_units(src, ("ibtheory", "reproduce")) == {"phases", "plots", "reproduce", "nets", "tasks", "store"}
    assert imported_units("from . import info\nfrom ._validate import real\n", ("ibtheory",)) == {"info", "_validate"}


def test_imports_only_go_down_the_floors_of_the_architecture_page():
    floors = _floors()
    units = {p.stem if p.suffix == ".py" else p.name for p in (ROOT / "ibtheory").iterdir()
             if not p.name.startswith("_") and (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert units <= set(floors), f"docs/architecture.md gives no floor to {sorted(units - set(floors))}"
    upward = []
    for path in sorted((ROOT / "ibtheory").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        unit = parts[1]
        if unit not in floors:  # the package's __init__, __main__ and the private helpers
            continue
        for other in sorted(imported_units(path.read_text(), parts[:-1]) - {unit}):
            if not other.startswith("_") and floors.get(other, -1) >= floors[unit]:
                upward.append(f"{path.relative_to(ROOT)} imports ibtheory.{other} (floor {floors.get(other)}, "
                              f"its own is {floors[unit]})")
    assert not upward, "imports that do not go down a floor (docs/architecture.md):\n" + "\n".join(upward)


def python_blocks(path: Path) -> list[tuple[int, str, bool]]:
    """(first line number, source, skipped) of every ```python block of ``path``."""
    text = path.read_text()
    out = []
    for m in _BLOCK.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        out.append((text[: m.start(1)].count("\n") + 1, m.group(1), before == SKIP_MARK))
    return out


def expected_outputs(source: str) -> dict[int, str]:
    """{line number in the block: expected printed text} for ``print(...)  # ... -> value`` lines."""
    out = {}
    for i, line in enumerate(source.splitlines(), start=1):
        m = re.match(r"\s*print\(.*#.*->\s*(.+?)\s*$", line)
        if m:
            out[i] = re.sub(r"\s+bits$", "", m.group(1))
    return out


def _normalise(text: str) -> str:
    return " ".join(text.replace("[ ", "[").split())


_NUMBER = re.compile(r"[-+]?\d+\.?\d*(?:[eE][-+]?\d+)?")


def same_output(got: str, want: str) -> bool:
    """Equal text after normalising whitespace, numbers within one unit of the page's last digit."""
    got, want = _normalise(got), _normalise(want)
    if _NUMBER.sub("#", got) != _NUMBER.sub("#", want):
        return False
    for g, w in zip(_NUMBER.findall(got), _NUMBER.findall(want), strict=True):
        mantissa = re.split("[eE]", w)[0]
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        scale = 10.0 ** int(re.split("[eE]", w)[1]) if re.search("[eE]", w) else 1.0
        if abs(float(g) - float(w)) > 1.01 * 10.0 ** -decimals * scale:
            return False
    return True


def run_block(source: str, label: str) -> dict[int, str]:
    """Execute ``source`` in a fresh namespace; return what each print line printed, by line number."""
    printed: dict[int, list[str]] = {}

    def recording_print(*args, sep=" ", end="\n", **kw):
        line = sys._getframe(1).f_lineno
        printed.setdefault(line, []).append(sep.join(str(a) for a in args))

    code = compile(source, label, "exec")
    exec(code, {"__name__": "__docs__", "print": recording_print})  # noqa: S102 - the docs' own code
    return {line: "\n".join(v) for line, v in printed.items()}


_DOCS = [ROOT / "docs" / "tutorial.md", ROOT / "README.md"]
_CASES = [pytest.param(path, start, src, skip, id=f"{path.name}:{start}")
          for path in _DOCS for start, src, skip in python_blocks(path)]


def test_the_pages_have_python_blocks():
    assert {p.name for p, *_ in (c.values for c in _CASES)} == {"tutorial.md", "README.md"}
    assert len([c for c in _CASES if c.values[0].name == "tutorial.md"]) >= 3


@pytest.mark.parametrize("path, start, source, skip", _CASES)
def test_python_block_runs_and_prints_what_it_says(path, start, source, skip, tmp_path, monkeypatch):
    if skip:
        pytest.skip(f"{path.name}:{start} is marked {SKIP_MARK}")
    monkeypatch.chdir(tmp_path)  # blocks may write files (README: task.nc)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks train fastest on one thread on a shared machine
    try:
        printed = run_block(source, f"{path.name}:{start}")
    finally:
        torch.set_num_threads(before)
    for line, want in expected_outputs(source).items():
        got = printed.get(line)
        assert got is not None, f"{path.name} line {start + line - 1} printed nothing"
        assert same_output(got, want), (f"{path.name} line {start + line - 1}: printed {got!r}, the "
                                                     f"page says {want!r}")


def test_expected_output_convention():
    src = 'print(1 + 1)   # two -> 2\nprint("[0.1 0.2]")  # F -> [0.1 0.2] bits\nprint(3)  # no arrow\n'
    assert expected_outputs(src) == {1: "2", 2: "[0.1 0.2]"}
    assert run_block(src, "demo") == {1: "2", 2: "[0.1 0.2]", 3: "3"}
    assert same_output("[0.1793 0.3302]", "[0.1794 0.3302]") and same_output("True", "True")
    assert not same_output("[0.1792 0.3302]", "[0.1794 0.3302]") and not same_output("False", "True")
    assert not same_output("[0.1794]", "[0.1794 0.3302]") and same_output("1.2e-05", "1.3e-05")
    with pytest.raises(ZeroDivisionError):
        run_block("1 / 0\n", "demo")


def _resolve(dotted: str):
    """Import the longest module prefix of ``dotted`` and get the rest as attributes (raises if missing)."""
    import importlib

    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_every_name_on_the_theory_page_exists():
    text = (ROOT / "docs" / "theory.md").read_text()
    names = sorted(set(re.findall(r"`(ibtheory(?:\.\w+)+)`", text)))
    assert len(names) >= 30, names
    missing = []
    for name in names:
        try:
            _resolve(name)
        except (ImportError, AttributeError):
            missing.append(name)
    assert not missing, f"docs/theory.md names functions that do not exist: {missing}"
    sections = set(re.findall(r"\| `(\w+)` \|$", text, re.M))
    from ibtheory.reproduce import SECTIONS

    assert sections <= set(SECTIONS) and {"plane", "gradients", "bound", "langevin", "depth", "sizes"} <= sections


def test_index_lists_every_docs_page_and_links_resolve():
    docs = ROOT / "docs"
    index = (docs / "index.md").read_text()
    listed = set(re.findall(r"^\| \[(\w+\.md)\]\(\1\) \| \S", index, re.M))
    pages = {p.name for p in docs.glob("*.md")} - {"index.md"}
    assert listed == pages, f"docs/index.md lists {sorted(listed)}, docs/ has {sorted(pages)}"
    for page in (docs / "index.md", docs / "theory.md", ROOT / "README.md"):
        for target in re.findall(r"\]\(([^)#:]+)\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
