"""The docs cannot rot: the generated API page is current, and the Python blocks of the tutorial and README run.

Conventions (docs/tutorial.md says so too): every fenced ```python block of docs/tutorial.md and README.md runs, in
its own namespace, in a temporary folder; a block preceded by the line ``<!-- docs-test: skip -->`` is not run; a
``print(...)`` line whose comment ends in ``-> value`` must print ``value`` (whitespace-normalised; a trailing
"bits" unit in the comment is ignored; a number may differ from the page by one unit of its last printed digit).
"""

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SKIP_MARK = "<!-- docs-test: skip -->"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _api_doc_module():
    spec = importlib.util.spec_from_file_location("api_doc", ROOT / "scripts" / "api_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_page_is_what_the_script_generates():
    """docs/api.md must be regenerated (``python scripts/api_doc.py``) whenever a public name or summary changes."""
    generated = _api_doc_module().render()
    current = (ROOT / "docs" / "api.md").read_text()
    if generated != current:
        import difflib

        diff = "".join(list(difflib.unified_diff(current.splitlines(True), generated.splitlines(True),
                                                 "docs/api.md", "scripts/api_doc.py now"))[:60])
        pytest.fail(f"docs/api.md is stale: run `python scripts/api_doc.py`.\n{diff}")


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
