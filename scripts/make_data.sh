#!/usr/bin/env bash
# Regenerates the small task files in data/ from the package itself (no external data needed).
set -euo pipefail
cd "$(dirname "$0")/.."
ibtheory task --name tishby --out data/tishby_hard.nc
ibtheory task --name tishby --gamma 19.05 --out data/tishby_soft.nc
ibtheory task --name binary-symmetric --p 0.1 --out data/binary_symmetric_0.1.nc
