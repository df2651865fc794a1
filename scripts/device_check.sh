#!/usr/bin/env bash
# The GPU checks of the training engine in one run (for a session lent an accelerator; CI has none).
#
# Usage, from the project root:   bash scripts/device_check.sh [cuda|cpu] [quick|full]
#   cpu quick : a dry run of every step at tiny sizes on this machine (seconds), to test the script before a GPU run
#   cuda full : on the GPU: the CUDA tests, the paper's full run and MNIST at full size (bench_training.py), and the
#               device-binning check; about 10 minutes on an H100/H200.
# Environment: OUT (folder for the log and results; default ./device-out), MNIST_DIR (the t10k IDX files; default
# .devdata/mnist, an ignored folder the runner carries), PY (python; default python3).
# Every step's output goes to $OUT/log.txt as it happens, so a timed-out run still reports what finished.
# On a lent machine without netCDF4/cftime, install carried wheels first (pip install --no-index --target) and set
# PYTHONPATH to them and the project root; see the project's notes on device runs.
set -uo pipefail
DEVICE=${1:-cuda}
SIZE=${2:-full}
OUT=${OUT:-device-out}
MNIST_DIR=${MNIST_DIR:-.devdata/mnist}
PY=${PY:-python3}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
export PYTHONUNBUFFERED=1
step() { echo "=== $* ($(date -u +%H:%M:%S))" | tee -a "$LOG"; }

step "device"
$PY - <<'EOF' 2>&1 | tee -a "$LOG"
import torch, platform
print("torch", torch.__version__, "python", platform.python_version(), "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF

step "tests that need CUDA (they skip without it)"
$PY -m pytest -q -p no:cacheprovider tests/test_binning_torch.py tests/test_nets.py -k "cuda or torch" 2>&1 \
    | tail -5 | tee -a "$LOG"

if [ "$SIZE" = quick ]; then
    PAPER=(--epochs 20 --trials 2); MNIST=(--mnist-n 500 --mnist-epochs-mlp 3 --mnist-epochs-conv 1 --mnist-repeats 2)
else
    PAPER=(--trials 5); MNIST=()
fi

step "the paper's full run and the per-step comparison (bench_training.py, $DEVICE)"
$PY benchmarks/bench_training.py --device "$DEVICE" "${PAPER[@]}" 2>&1 | tee -a "$LOG"

if [ -d "$MNIST_DIR" ]; then
    step "MNIST at full size (bench_training.py --skip-paper, $DEVICE)"
    $PY benchmarks/bench_training.py --device "$DEVICE" --skip-paper --mnist-dir "$MNIST_DIR" "${MNIST[@]}" \
        --trials 2 2>&1 | tee -a "$LOG"
else
    step "MNIST skipped: no folder $MNIST_DIR"
fi

step "binning and the KDE bounds on the device against the host path (one train run each way)"
$PY - "$DEVICE" "$SIZE" <<'EOF' 2>&1 | tee -a "$LOG"
import os, sys, time
import numpy as np
from ibtheory import nets, tasks
device, size = sys.argv[1], sys.argv[2]
epochs = 300 if size == "full" else 10
runs = {}
for switch in ("0", "1"):
    os.environ["IBTHEORY_MEASURE_ON_DEVICE"] = switch
    t = time.perf_counter()
    runs[switch] = nets.train(tasks.tishby(), repeats=50, epochs=epochs, snapshots=100, device=device, workers=1,
                              estimators=("binning", "kde"), progress=False)
    print(f"measure on device={switch}: {time.perf_counter() - t:.1f} s")
d = max(float(np.abs(runs["0"][v] - runs["1"][v]).max()) for v in ("I_XT", "I_TY"))
print("max |difference| host vs device binning:", d, "bits; n_states equal:",
      bool((runs["0"]["n_states"] == runs["1"]["n_states"]).all()))
k = max(float(np.abs(runs["0"][v] - runs["1"][v]).max()) for v in runs["0"].data_vars if "kde" in v)
print("max |difference| host vs device KDE bounds:", k, "bits")
EOF
step "done"
