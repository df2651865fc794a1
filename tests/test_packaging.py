"""Packaging as users install it: one version everywhere, a wheel that holds the whole package, a valid citation file.

The full check (an empty venv, the wheel installed with its dependencies from the index, ``ibtheory reproduce --size
tiny`` run from it) is ``scripts/check_wheel.sh``, which ``.ci/run`` calls before the tests; these are the fast,
offline parts.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import importlib.util
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import ibtheory
from ibtheory import _version, store

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ibtheory"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _literal_version() -> str:
    """``__version__`` of ibtheory/_version.py read as setuptools reads it: a literal assignment, without importing."""
    tree = ast.parse((PACKAGE / "_version.py").read_text(encoding="utf-8"))
    values = [ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)]
    assert len(values) == 1, f"ibtheory/_version.py must assign __version__ once to a literal, found {values}"
    return values[0]


def _cff_version() -> str:
    """The top-level ``version:`` of CITATION.cff (references are indented, so their fields do not match)."""
    found = re.findall(r"^version:\s*(.+?)\s*$", (ROOT / "CITATION.cff").read_text(encoding="utf-8"), re.M)
    assert len(found) == 1, f"CITATION.cff must have one top-level version, found {found}"
    return found[0].strip("'\"")


# --- one version --------------------------------------------------------------------------------------------------

def test_version_is_defined_once_and_every_copy_agrees():
    """_version.py (static), ibtheory, store (every saved file's provenance) and the installed metadata agree."""
    version = _literal_version()
    assert ibtheory.__version__ == version
    assert store.__version__ is _version.__version__ == version
    assert store.provenance()["ibtheory_version"] == version
    installed = importlib.metadata.version("ibtheory")
    assert installed == version, (
        f"the installed metadata says {installed} but ibtheory/_version.py says {version}: reinstall the package "
        "(pip install -e .)")


def test_version_is_a_normalised_pep440_version():
    assert str(Version(ibtheory.__version__)) == ibtheory.__version__


def test_pyproject_reads_the_version_from_version_py_statically():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "ibtheory._version.__version__"
    # setuptools evaluates a literal without importing; an import here would need numpy in the isolated build env.
    source = (PACKAGE / "_version.py").read_text(encoding="utf-8")
    assert not [n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_store_imports_the_version_without_importlib_metadata():
    """store.__version__ comes from _version.py, not from the installed metadata (stale in a source checkout)."""
    assert "importlib.metadata" not in (PACKAGE / "store.py").read_text(encoding="utf-8")


# --- what the wheel holds -----------------------------------------------------------------------------------------

def _source_packages() -> dict[str, Path]:
    """Dotted name -> folder of every folder under ibtheory/ that holds Python files."""
    folders = {p.parent for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    return {".".join(f.relative_to(ROOT).parts): f for f in folders}


def test_every_folder_with_modules_is_a_package_the_build_finds():
    """``packages.find`` keeps the dotted names its ``include`` patterns match; with ``namespaces = false`` it also
    skips a folder without __init__.py. Either way that folder's modules would be missing from the wheel."""
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    include, namespaces = find["include"], find.get("namespaces", True)  # setuptools' default for pyproject: True
    for name, folder in _source_packages().items():
        assert any(fnmatch.fnmatchcase(name, pattern) for pattern in include), f"{name} not matched by {include}"
        assert namespaces or (folder / "__init__.py").is_file(), f"{folder} has modules but no __init__.py"


def test_package_has_no_undeclared_data_files():
    """A non-Python file read at run time must be declared package data; today the package reads none."""
    declared = PYPROJECT["tool"]["setuptools"].get("package-data", {})
    others = [p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*")
              if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert not others or declared, f"files under ibtheory/ that the wheel would not hold: {others}"


def _clean_copy(dest: Path) -> None:
    """The files git tracks or would track (untracked, not ignored), as a fresh clone has them once committed."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)


def _can_build_offline() -> str | None:
    """Why a wheel cannot be built here without the index (None if it can)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return "not a git checkout"
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not installed (the isolated build would fetch it from the index)"
    have = Version(importlib.metadata.version("setuptools"))
    need = Requirement(PYPROJECT["build-system"]["requires"][0])
    if need.name != "setuptools" or have not in need.specifier:
        return f"setuptools {have} does not meet the build requirement {need}"
    return None


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a clean copy with this environment's setuptools (no build isolation: offline, ~2 s)."""
    reason = _can_build_offline()
    if reason:
        pytest.skip(f"cannot build a wheel offline: {reason}; scripts/check_wheel.sh checks the wheel in CI")
    src, dist = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    _clean_copy(src)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "--quiet", "-w", str(dist), str(src)], check=True, capture_output=True)
    (wheel,) = dist.glob("ibtheory-*.whl")
    return wheel


def test_wheel_holds_every_module_and_nothing_else(built_wheel: Path):
    names = set(zipfile.ZipFile(built_wheel).namelist())
    source = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    assert source <= names, f"modules missing from the wheel: {sorted(source - names)}"
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"ibtheory"}, f"top-level entries: {sorted(tops)}"


def test_wheel_metadata_name_version_dependencies_and_command(built_wheel: Path):
    version = ibtheory.__version__
    assert built_wheel.name == f"ibtheory-{version}-py3-none-any.whl"
    with zipfile.ZipFile(built_wheel) as wheel:
        meta = wheel.read(f"ibtheory-{version}.dist-info/METADATA").decode()
        entry_points = wheel.read(f"ibtheory-{version}.dist-info/entry_points.txt").decode()
    assert re.search(r"^Name: ibtheory$", meta, re.M) and re.search(rf"^Version: {re.escape(version)}$", meta, re.M)
    required = {str(Requirement(r)) for r in re.findall(r"^Requires-Dist: (.+)$", meta, re.M) if "extra ==" not in r}
    assert required == {str(Requirement(r)) for r in PYPROJECT["project"]["dependencies"]}
    assert re.search(r"^ibtheory = ibtheory\.cli:main$", entry_points, re.M)


# --- citation and changelog ---------------------------------------------------------------------------------------

def test_citation_cff_version_is_the_package_version():
    assert _cff_version() == ibtheory.__version__


def test_citation_cff_lists_the_tested_paper_as_a_reference():
    text = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert re.search(r"^cff-version: 1\.2\.0$", text, re.M)
    references = text.split("\nreferences:\n", 1)
    assert len(references) == 2 and "arXiv:1703.00810" in references[1]


def test_citation_cff_validates_against_the_cff_1_2_0_schema():
    cffconvert = pytest.importorskip("cffconvert", reason="cffconvert (the CFF validator) is not installed")
    cffconvert.Citation((ROOT / "CITATION.cff").read_text(encoding="utf-8")).validate()  # raises when invalid


def test_changelog_has_a_section_for_this_version():
    """A development version's changes are under [Unreleased]; a release has its own ``## [X.Y.Z]`` heading."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    version = Version(ibtheory.__version__)
    heading = "Unreleased" if version.is_devrelease or version.is_prerelease else re.escape(str(version))
    assert re.search(rf"^## \[{heading}\]", text, re.M), f"CHANGELOG.md has no '## [{heading}]' section"
