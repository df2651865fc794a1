#!/usr/bin/env bash
# A wheel built from a clean copy of this checkout installs into an empty virtual environment and runs, as a user
# installs it:
#   1. copy the files git tracks or would track (untracked but not ignored; what a fresh clone has once they are
#      committed) to a temporary folder: no build/, *.egg-info, caches or results of this checkout leak in;
#   2. create an empty venv there, `pip install torch==2.13.0` (the CPU build; a bare `torch` requirement would pull
#      a multi-GB CUDA build), `pip wheel <copy> --no-deps` (isolated build: setuptools from the index) and install
#      the wheel, its other dependencies coming from the index;
#   3. check the wheel holds every module of the package and nothing else (no tests/, data/, scripts/);
#   4. from a folder outside the source: `ibtheory --help`, `python -m ibtheory --help`, `ibtheory task --name
#      tishby` (the saved file records the package version), `ibtheory reproduce --size tiny` (report.md written);
#   5. validate CITATION.cff with cffconvert (installed into the same throwaway venv after the checks above).
# Usage: scripts/check_wheel.sh [--keep]      PYTHON=python3.x picks the interpreter (default python3).
# About 1 minute (2 cores; most of it installing the dependencies).  .ci/run calls it before the tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
keep=0
if [[ "${1:-}" == "--keep" ]]; then keep=1; fi
work="$(mktemp -d "${TMPDIR:-/tmp}/ibtheory-wheel.XXXXXX")"
cleanup() { if ((keep)); then echo "check_wheel: kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
step() { echo "check_wheel: [$((SECONDS - start)) s] $*"; }
start=$SECONDS

step "clean copy of $root"
mkdir "$work/src" "$work/dist" "$work/run"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (
        cd "$root"
        git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
            if [[ -e "$f" ]]; then printf '%s\0' "$f"; fi      # a tracked file deleted in the work tree is skipped
        done | xargs -0 cp --parents -t "$work/src"
    )
else                                                           # an unpacked archive: everything but build output
    tar -C "$root" --exclude=.git --exclude=build --exclude=dist --exclude='*.egg-info' --exclude=__pycache__ \
        --exclude=.venv --exclude=venv -c . | tar -C "$work/src" -x
fi

step "empty venv ($("$python" --version))"
"$python" -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet torch==2.13.0

step "pip wheel --no-deps"
"$py" -m pip wheel --quiet --no-deps -w "$work/dist" "$work/src"
wheels=("$work"/dist/ibtheory-*.whl)
if [[ ${#wheels[@]} -ne 1 || ! -f "${wheels[0]}" ]]; then
    echo "check_wheel: expected one ibtheory wheel in $work/dist, found: ${wheels[*]}" >&2
    exit 1
fi
wheel="${wheels[0]}"
step "built $(basename "$wheel")"

"$py" - "$wheel" "$work/src" <<'EOF'
"""The wheel holds every module of the package (and its package data: none today) and no other top-level folder."""
import sys
import zipfile
from pathlib import Path

wheel, src = sys.argv[1], Path(sys.argv[2])
names = set(zipfile.ZipFile(wheel).namelist())
source = {p.relative_to(src).as_posix() for p in (src / "ibtheory").rglob("*") if p.is_file()}
missing = sorted(source - names)
tops = {n.split("/")[0] for n in names}
extra = sorted(t for t in tops if t != "ibtheory" and not t.endswith(".dist-info"))
if missing or extra:
    sys.exit(f"check_wheel: the wheel lacks {missing} / has unexpected top-level entries {extra}")
print(f"check_wheel: the wheel holds all {len(source)} files of ibtheory/ and only them")
EOF

step "pip install the wheel (dependencies from the index)"
"$py" -m pip install --quiet "$wheel"

step "run from $work/run"
cd "$work/run"
bin="$work/venv/bin"
env -u PYTHONPATH "$bin/ibtheory" --help >/dev/null
env -u PYTHONPATH "$py" -m ibtheory --help >/dev/null
env -u PYTHONPATH "$bin/ibtheory" task --name tishby --out tishby.nc
env -u PYTHONPATH "$py" - "$work/venv" <<'EOF'
"""ibtheory is imported from the venv (not the checkout); its three versions and the saved file's agree."""
import sys
from importlib.metadata import version
from pathlib import Path

import ibtheory

venv = Path(sys.argv[1]).resolve()
where = Path(ibtheory.__file__).resolve()
if venv not in where.parents:
    sys.exit(f"check_wheel: ibtheory was imported from {where}, not from the venv {venv}")
found = {"ibtheory.__version__": ibtheory.__version__, "store.__version__": ibtheory.store.__version__,
         "metadata": version("ibtheory"), "tishby.nc": ibtheory.load("tishby.nc").attrs["ibtheory_version"]}
if len(set(found.values())) != 1:
    sys.exit(f"check_wheel: versions disagree: {found}")
print(f"check_wheel: ibtheory {ibtheory.__version__} from {where.parent}")
EOF
env -u PYTHONPATH "$bin/ibtheory" reproduce --size tiny --out report
if [[ ! -s report/report.md ]]; then
    echo "check_wheel: ibtheory reproduce wrote no report/report.md" >&2
    exit 1
fi

step "validate CITATION.cff"
"$py" -m pip install --quiet cffconvert
"$bin/cffconvert" --validate -i "$work/src/CITATION.cff"

step "passed"
