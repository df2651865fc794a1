"""Batched ensemble training: equivalence with separate trainings, resume, schedules, DPI, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from ibtheory import nets, runner, store, tasks
from ibtheory.estimators import binned_information
from ibtheory.nets import data
from ibtheory.nets import run as run_module
from ibtheory.nets.model import ACTIVATIONS, BatchedMLP

SMALL = dict(hidden=(6, 4, 3), repeats=3, epochs=6, snapshots=5, batch_size=256, progress=False)
#: (optimizer, lr): the paper's Adam, and plain SGD with a step large enough to move the weights in a few epochs
OPTIMIZERS = [pytest.param("adam", 4e-4, id="adam"), pytest.param("sgd", 0.05, id="sgd")]


@pytest.fixture(scope="module")
def task():
    return tasks.tishby()


@pytest.mark.parametrize(("optimizer", "lr"), OPTIMIZERS)
def test_ensemble_equals_separate_trainings(task, optimizer, lr):
    kw = dict(SMALL, optimizer=optimizer, lr=lr, dtype="float64", seed=3)
    together = nets.train(task, **kw)
    assert json.loads(together.attrs["config"])["optimizer"] == optimizer
    for r in range(SMALL["repeats"]):
        alone = nets.train(task, **dict(kw, repeats=1), repeat_start=r)
        for name in ("checkpoint_params", "train_loss", "test_accuracy", "I_XT", "I_TY", "grad_std_norm"):
            assert_allclose(together[name].sel(repeat=r).values, alone[name].sel(repeat=r).values,
                            rtol=1e-9, atol=1e-12, err_msg=f"{name}: repeat {r} batched vs alone (tol 1e-9)")
        np.testing.assert_array_equal(together["train_mask"].sel(repeat=r), alone["train_mask"].sel(repeat=r))


def test_repeats_differ_and_seed_reproduces(task):
    a = nets.train(task, seed=1, **SMALL)
    b = nets.train(task, seed=1, **SMALL)
    np.testing.assert_array_equal(a["checkpoint_params"].values, b["checkpoint_params"].values)
    masks = a["train_mask"].values
    assert masks.sum(axis=1).tolist() == [round(0.8 * 4096)] * 3, "80 % of the patterns per repeat"
    assert not np.array_equal(masks[0], masks[1]), "each repeat has its own split"
    assert not np.allclose(a["checkpoint_params"].values[0], a["checkpoint_params"].values[1])


@pytest.mark.parametrize(("optimizer", "lr"), OPTIMIZERS)
def test_resume_after_interrupt_reproduces_uninterrupted_run(task, tmp_path, interrupt_measuring, optimizer, lr):
    kw = dict(SMALL, epochs=12, snapshots=8, checkpoint_seconds=1e9, optimizer=optimizer, lr=lr)
    full = nets.train(task, seed=5, **kw)
    moved = np.abs(full["weight_norm"].isel(epoch=-1) - full["weight_norm"].isel(epoch=0)).values
    assert moved.min() > 1e-4, f"{optimizer}: the weights must move during training, |d weight_norm| = {moved}"
    arm, disarm = interrupt_measuring
    out = tmp_path / "run.nc"
    arm(4)
    with pytest.raises(KeyboardInterrupt):
        nets.train(task, seed=5, out=out, **kw)
    partial = store.load(out)
    assert partial.attrs["complete"] == 0 and partial.sizes["epoch"] == 3, "three finished snapshots were saved"
    disarm()
    resumed = nets.train(task, seed=5, out=out, **kw)
    assert resumed.attrs["complete"] == 1
    for name in ("I_XT", "I_TY", "train_loss", "grad_mean_norm", "checkpoint_params"):
        assert_allclose(resumed[name].values, full[name].values, rtol=1e-6, atol=1e-7,
                        err_msg=f"{name}: resumed vs uninterrupted (tol 1e-6)")
    with pytest.raises(ValueError, match="different configuration"):
        nets.train(task, seed=6, out=out, **kw)


_KILLED_CHILD = """
import json, sys, time
from ibtheory import nets, tasks
from ibtheory.nets import run as run_module

real = run_module.measure_snapshot

def slow(*args, **kwargs):  # a slow estimator: the run lasts long enough to be killed in the middle of it
    time.sleep(0.4)
    return real(*args, **kwargs)

run_module.measure_snapshot = slow
nets.train(tasks.tishby(), out=sys.argv[1], **json.loads(sys.argv[2]))
"""


def test_resume_after_sigkill_uses_the_periodic_checkpoint(task, tmp_path):
    """A real SIGKILL (no handler runs): only the saves made every ``checkpoint_seconds`` survive, and resuming
    from them reproduces the uninterrupted run."""
    kw = dict(SMALL, epochs=20, snapshots=10, seed=5)  # snapshot epochs 0, 1, 2, 3, 4, 7, 9, 14, 20
    out = tmp_path / "run.nc"
    stderr = open(tmp_path / "child.err", "w+")
    child = subprocess.Popen([sys.executable, "-c", _KILLED_CHILD, str(out), json.dumps(dict(kw,
                             checkpoint_seconds=0.05))], stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 120  # generous: a loaded machine only delays the child, the poll stays cheap
    try:
        # the uninterrupted reference, computed while the child starts (it imports torch: seconds); the child
        # then needs >= 9 x 0.4 s more, so it cannot finish before the poll below begins
        full = nets.train(task, **kw)
        while True:
            if child.poll() is not None:
                stderr.seek(0)
                pytest.fail(f"the training ended (rc {child.returncode}) before it was killed:\n{stderr.read()}")
            if out.exists() and store.load(out).sizes["epoch"] >= 3:  # saves are atomic: every read is whole
                break
            if time.monotonic() > deadline:
                pytest.fail(f"no periodic save with 3 snapshots in {out} after 120 s")
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        stderr.close()
    partial = store.load(out)
    planned = nets.snapshot_epochs(kw["epochs"], kw["snapshots"]).tolist()
    n = partial.sizes["epoch"]
    assert partial.attrs["complete"] == 0 and 3 <= n < len(planned), f"killed mid-run: {n} of {len(planned)} saved"
    assert partial["epoch"].values.tolist() == planned[:n]
    assert partial.attrs["checkpoint_epoch"] == planned[n - 1]
    stale = tmp_path / ".run.nc.k1ll3d_x.tmp"  # what a kill during store.save leaves (mkstemp: 8 random characters)
    stale.write_bytes(b"half a netCDF file")
    resumed = nets.train(task, out=out, **kw)
    assert resumed.attrs["complete"] == 1 and store.load(out).attrs["complete"] == 1
    for name in ("I_XT", "I_TY", "train_loss", "test_accuracy", "grad_mean_norm", "checkpoint_params",
                 "checkpoint_opt_v"):
        assert_allclose(resumed[name].values, full[name].values, rtol=1e-6, atol=1e-7,
                        err_msg=f"{name}: resumed after SIGKILL at snapshot {n} vs uninterrupted (tol 1e-6)")
    left = sorted(p.name for p in tmp_path.iterdir() if p.name not in ("run.nc", "child.err"))
    assert left == [], f"half-written files left beside the run: {left}"


_TERMINATED_CHILD = """
import json, sys, time
from pathlib import Path
from ibtheory import nets, tasks
from ibtheory.nets import run as run_module

real = run_module.measure_snapshot
progress = Path(sys.argv[3])

def slow(*args, **kwargs):  # one line per estimated snapshot, then a pause: the run is long enough to be stopped
    out = real(*args, **kwargs)
    with progress.open("a") as f:
        f.write("snapshot\\n")
    time.sleep(0.4)
    return out

run_module.measure_snapshot = slow
nets.train(tasks.tishby(), out=sys.argv[1], **json.loads(sys.argv[2]))
"""


def test_sigterm_saves_a_checkpoint_like_ctrl_c_and_the_run_resumes(task, tmp_path):
    """A real SIGTERM (what ``timeout`` and batch schedulers send) to a child training with no periodic saves
    (checkpoint_seconds=1e9): the child saves the snapshots done so far and exits with Terminated, and resuming
    the saved file reproduces the uninterrupted run."""
    kw = dict(SMALL, epochs=20, snapshots=10, seed=5)  # snapshot epochs 0, 1, 2, 3, 4, 7, 9, 14, 20
    out, progress = tmp_path / "run.nc", tmp_path / "progress.txt"
    stderr = open(tmp_path / "child.err", "w+")
    child = subprocess.Popen([sys.executable, "-c", _TERMINATED_CHILD, str(out),
                              json.dumps(dict(kw, checkpoint_seconds=1e9)), str(progress)],
                             stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 120  # generous: a loaded machine only delays the child, the poll stays cheap
    try:
        full = nets.train(task, **kw)  # the uninterrupted reference, while the child imports torch
        while not (progress.exists() and len(progress.read_text().splitlines()) >= 4):
            if child.poll() is not None:
                stderr.seek(0)
                pytest.fail(f"the training ended (rc {child.returncode}) before SIGTERM:\n{stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail("the child estimated fewer than 4 snapshots in 120 s")
            time.sleep(0.02)
        assert not out.exists(), "no periodic save may happen with checkpoint_seconds=1e9"
        os.kill(child.pid, signal.SIGTERM)
        rc = child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        stderr.seek(0)
        err = stderr.read()
        stderr.close()
    assert rc != 0 and rc != -signal.SIGTERM and "Terminated" in err, f"rc {rc}, stderr:\n{err[-2000:]}"
    partial = store.load(out)  # written by the SIGTERM handler only
    planned = nets.snapshot_epochs(kw["epochs"], kw["snapshots"]).tolist()
    n = partial.sizes["epoch"]
    assert partial.attrs["complete"] == 0 and 3 <= n < len(planned), f"stopped mid-run: {n} of {len(planned)} saved"
    assert partial["epoch"].values.tolist() == planned[:n] and partial.attrs["checkpoint_epoch"] == planned[n - 1]
    resumed = nets.train(task, out=out, **kw)
    assert resumed.attrs["complete"] == 1
    for name in ("I_XT", "I_TY", "train_loss", "test_accuracy", "grad_mean_norm", "checkpoint_params",
                 "checkpoint_opt_v"):
        assert_allclose(resumed[name].values, full[name].values, rtol=1e-6, atol=1e-7,
                        err_msg=f"{name}: resumed after SIGTERM at snapshot {n} vs uninterrupted (tol 1e-6)")


@pytest.mark.parametrize(("optimizer", "lr"), [("adam", 1e36), ("adam", 3e37), ("sgd", 1e36)])
def test_a_learning_rate_that_overflows_stops_training_naming_epoch_and_repeats(task, optimizer, lr):
    # float32: after the first steps the logits overflow (inf loss) or the weights do (inf/NaN parameters)
    with pytest.raises(nets.TrainingDiverged, match=r"non-finite \(NaN or inf\) (parameters|losses|activations) at "
                       r"epoch 1 in repeat\(s\) [0-2](, [0-2])* of 3") as exc:
        nets.train(task, lr=lr, optimizer=optimizer, **SMALL)
    err = exc.value
    assert isinstance(err, ValueError) and err.epoch == 1 and len(err.repeats) >= 1
    assert err.dataset.attrs["diverged"] == 1 and err.dataset["epoch"].values.tolist() == [0], "epoch 0 is finite"
    assert np.isfinite(err.dataset["train_loss"].values).all()
    # the named repeats are those that diverge the same way when each trains alone (the ensemble is R trainings)
    alone = {}
    for r in range(SMALL["repeats"]):
        with pytest.raises(nets.TrainingDiverged) as one:
            nets.train(task, lr=lr, optimizer=optimizer, **dict(SMALL, repeats=1), repeat_start=r)
        alone[r] = (one.value.epoch, one.value.what)
    assert err.repeats == tuple(r for r, v in alone.items() if v == (1, err.what)), (err.repeats, alone)


def test_conv_ensembles_stop_on_divergence_and_name_bad_arguments():
    from ibtheory.nets.conv import train_conv

    images = tasks.tishby()
    images.attrs.update(image_height=3, image_width=4)  # the 12 input bits as 3x4 images
    kw = dict(channels=(2,), kernel=3, hidden=(4,), repeats=2, epochs=2, snapshots=2, batch_size=1024, progress=False)
    with pytest.raises(nets.TrainingDiverged, match=r"at epoch 1 in repeat\(s\) "):
        train_conv(images, **dict(kw, lr=1e36))
    for bad, match in (({"kernel": float("nan")}, "^kernel must be an integer, got nan$"),
                       ({"channels": ("a",)}, "^channels\\[0\\] must be an integer"),
                       ({"estimators": None}, "^estimators must be")):
        with pytest.raises(ValueError, match=match):
            train_conv(images, **dict(kw, **bad))


def test_a_poisoned_repeat_is_named_and_its_finite_snapshots_are_saved_marked(task, tmp_path, monkeypatch):
    """A NaN gradient entry of repeat 1 in the middle of epoch 4 (not a snapshot epoch): the end-of-epoch check
    names epoch 4 and repeat 1 only, the snapshots 0..3 are saved as computed, and the diverged file is not
    resumed (a clear error instead of diverging again)."""
    kw = dict(SMALL, checkpoint_seconds=1e9)  # snapshot epochs 0, 1, 2, 3, 6
    reference = nets.train(task, **kw)
    per_epoch = -(-round(0.8 * 4096) // kw["batch_size"])  # minibatches per epoch
    real, calls = BatchedMLP.grad_step, {"n": 0}

    def poisoned(self, x, y):
        real(self, x, y)
        calls["n"] += 1
        if calls["n"] == 3 * per_epoch + 5:
            self.weight_views(self.flat_grad)[1][1, 0] = float("nan")  # dW_2 of repeat 1

    monkeypatch.setattr(BatchedMLP, "grad_step", poisoned)
    out = tmp_path / "run.nc"
    with pytest.raises(nets.TrainingDiverged, match=r"parameters at epoch 4 in repeat\(s\) 1 of 3.*saved in") as exc:
        nets.train(task, out=out, **kw)
    assert exc.value.epoch == 4 and exc.value.repeats == (1,)
    saved = store.load(out)
    assert saved.attrs["diverged"] == 1 and saved.attrs["complete"] == 0
    assert saved.attrs["diverged_epoch"] == 4 and np.atleast_1d(saved.attrs["diverged_repeats"]).tolist() == [1]
    assert saved["epoch"].values.tolist() == [0, 1, 2, 3] and saved.attrs["checkpoint_epoch"] == 3
    for name in ("I_XT", "I_TY", "train_loss", "test_accuracy", "weight_norm"):
        assert_allclose(saved[name].values, reference[name].sel(epoch=[0, 1, 2, 3]).values, rtol=1e-6, atol=1e-7,
                        err_msg=f"{name}: the saved snapshots are those of the unpoisoned run (tol 1e-6)")
    monkeypatch.setattr(BatchedMLP, "loss_and_grad", real)
    before = out.read_bytes()
    with pytest.raises(nets.TrainingDiverged, match=r"holds a run that diverged .*epoch 4 in repeat\(s\) 1\b"):
        nets.train(task, out=out, **kw)
    assert out.read_bytes() == before, "refusing to resume leaves the file as it was"


def test_cuda_asked_for_without_cuda_is_a_clear_error(task, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")

    def boom(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(run_module, "iter_training", boom)
    for device in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match=f"device '{device}' was asked for but CUDA is not available"):
            nets.train(task, device=device, **SMALL)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (see docs/scaling.md, GPUs)")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cpu_and_cuda_training_agree(task, dtype):
    """The same batched ensemble on the CPU and on the GPU: identical information plane, losses to float rounding.

    On CPU, float32 and float64 runs of this configuration differ by at most 1.5e-7 (relative) in the losses and
    8e-7 in the weights, and bin no activation differently; CPU and GPU in one precision differ by rounding of the
    same size, so the tolerances below leave a margin of ~10x.
    """
    kw = dict(SMALL, epochs=20, snapshots=6, estimators=("binning", "ensemble"), dtype=dtype, seed=7)
    cpu = nets.train(task, device="cpu", **kw)
    torch.cuda.reset_peak_memory_stats()
    gpu = nets.train(task, device="cuda", **kw)
    assert torch.cuda.max_memory_allocated() > 0, "the CUDA run allocated nothing on the GPU"
    assert json.loads(gpu.attrs["config"])["device"] == "cuda"
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (1e-5, 1e-5)
    for name in ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "checkpoint_params", "weight_norm",
                 "grad_mean_norm", "grad_std_norm"):
        assert_allclose(gpu[name].values, cpu[name].values, rtol=rtol * 10 if name.startswith("grad") else rtol,
                        atol=atol, err_msg=f"{name} ({dtype}): cuda vs cpu (rtol {rtol}, atol {atol})")
    for name in ("I_XT", "I_TY", "n_states", "I_XT_ensemble", "I_TY_ensemble"):
        np.testing.assert_array_equal(
            gpu[name].values, cpu[name].values,
            err_msg=f"{name} ({dtype}): cuda vs cpu must bin every activation alike (a difference means more than "
                    "rounding, or an activation within rounding of a bin edge)")


def test_keep_activations_layout(task):
    ds = nets.train(task, keep_activations=True, **dict(SMALL, epochs=2, snapshots=3))
    a = ds["activations"]
    assert a.dims == ("epoch", "layer", "repeat", "x", "unit") and a.sizes["unit"] == 6
    for layer, width in zip(ds["layer"].values, ds["width"].values, strict=True):
        block = a.sel(layer=layer).values
        assert np.isfinite(block[..., :width]).all() and np.isnan(block[..., width:]).all()
    probs = a.sel(layer=ds["layer"].values[-1]).values[..., :2]
    assert_allclose(probs.sum(-1), 1.0, atol=1e-5, err_msg="last layer is the softmax output")
    p_x, p_y_x = tasks.conditional(ds["p_xy"].values)
    r = binned_information(a.sel(layer=2).values, p_x, p_y_x)
    assert_allclose(r.I_XT, ds["I_XT"].sel(layer=2).values, atol=1e-9, err_msg="stored activations reproduce I_XT")


def test_dpi_holds_for_binned_quantised_network():
    # each layer reads the bin centres of the previous one, so B(T_{l+1}) is a function of B(T_l): exact DPI
    rng = np.random.default_rng(0)
    x = tasks.tishby_patterns().astype(float)
    p_x = np.full(4096, 1 / 4096)
    p_y_x = tasks.conditional(tasks.tishby()["p_xy"].values)[1]
    h, ixt, ity = x, [], []
    for width in (10, 7, 5, 4, 3, 2):
        h = np.tanh(h @ rng.normal(size=(h.shape[1], width)) / np.sqrt(h.shape[1]) * 2)
        r = binned_information(h[None], p_x, p_y_x, n_bins=30)
        ixt.append(float(r.I_XT[0]))
        ity.append(float(r.I_TY[0]))
        h = -1 + (np.clip(np.floor((h + 1) * 15), 0, 29) + 0.5) / 15  # bin centres feed the next layer
    assert np.all(np.diff(ixt) <= 1e-12), f"I(X;T_l) must not increase: {ixt}"
    assert np.all(np.diff(ity) <= 1e-12), f"I(T_l;Y) must not increase: {ity}"


def test_dpi_ordering_of_trained_tanh_network(task):
    ds = nets.train(task, **dict(SMALL, hidden=(10, 7, 5, 4, 3), epochs=20, snapshots=4))
    mean = ds["I_XT"].mean("repeat").values  # (epoch, layer)
    assert np.all(np.diff(mean, axis=1) <= 0.05), f"binned I(X;T) ordered across layers (0.05 bits): {mean}"


def test_snapshot_schedule_and_orders():
    e = data.snapshot_epochs(10_000, 300)
    assert e[0] == 0 and e[-1] == 10_000 and np.all(np.diff(e) > 0) and 200 < e.size <= 300
    keys = np.array([1, 2, 3], dtype=np.uint64)
    o = data.epoch_orders(keys, 7, 100)
    np.testing.assert_array_equal(np.sort(o, axis=1), np.tile(np.arange(100), (3, 1)))
    np.testing.assert_array_equal(o[1:2], data.epoch_orders(keys[1:2], 7, 100))
    assert not np.array_equal(o[0], o[1]) and not np.array_equal(o, data.epoch_orders(keys, 8, 100))


def test_gradient_statistics_definition(task):
    ds = nets.train(task, **dict(SMALL, epochs=3, snapshots=4))
    assert np.isnan(ds["grad_snr"].sel(epoch=0)).all()
    later = ds.sel(epoch=ds["epoch"] > 0)
    assert_allclose(later["grad_snr"], later["grad_mean_norm"] / later["grad_std_norm"], rtol=1e-12)
    assert (later["grad_std_norm"] > 0).all() and (later["weight_norm"] > 0).all()


def test_tanh_matches_torch():
    z = torch.linspace(-8, 8, 1001, dtype=torch.float64, requires_grad=True)
    y = ACTIVATIONS["tanh"](z)
    y.sum().backward()
    assert_allclose(y.detach().numpy(), np.tanh(z.detach().numpy()), atol=1e-15)
    assert_allclose(z.grad.numpy(), 1 - np.tanh(z.detach().numpy()) ** 2, atol=1e-14)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"activation": "swish"}, "activation"), ({"hidden": (5, 0)}, "hidden"), ({"hidden": ()}, "hidden"),
     ({"hidden": "10-7"}, "hidden"), ({"hidden": (5.5,)}, "hidden"),
     ({"train_fraction": 1.0}, "train_fraction"), ({"train_fraction": 0.0}, "train_fraction"),
     ({"n_bins": 1}, "n_bins"), ({"estimators": ("mine",)}, "estimators"), ({"optimizer": "lbfgs"}, "optimizer"),
     ({"repeats": 0}, "repeats"), ({"lr": -1.0}, "lr"), ({"limits": (1, 0)}, "limits"),
     ({"device": "gpu"}, "device"), ({"checkpoint_seconds": 0.0}, "checkpoint_seconds"),
     ({"epochs": float("nan")}, r"^epochs must be an integer, got nan$"),
     ({"epochs": np.float64(np.nan)}, r"^epochs must be an integer, got nan$"),
     ({"epochs": None}, r"^epochs must be an integer, got None"), ({"epochs": 2.5}, "^epochs must be an integer"),
     ({"seed": -1}, r"^seed must be an integer >= 0, got -1$"), ({"seed": "a"}, "^seed must be an integer"),
     ({"seed": 1.5}, r"^seed must be an integer in \[0, 2\*\*63 - 1\], got 1.5"),
     ({"seed": 2**63}, "^seed must be an integer <="),
     ({"lr": np.float64(np.nan)}, r"^lr must be a finite number, got nan$"),
     ({"lr": "1e-3"}, "^lr must be a real number"), ({"lr": 1e300}, r"^lr must be <= 3.4e\+37 for float32 networks"),
     ({"lr": 1e308, "dtype": "float64"}, r"^lr must be <= 1.8e\+307 for float64"),
     ({"repeats": np.float64(np.inf)}, "^repeats must be an integer"),
     ({"activation": ["tanh"]}, "^activation must be one of"), ({"hidden": None}, "^hidden must be"),
     ({"estimators": None}, "^estimators must be"), ({"n_bins": float("nan")}, "^n_bins must be an integer"),
     ({"noise_var": np.float32(-1)}, r"^noise_var must be > 0, got -1.0$"), ({"threads": 1.5}, "^threads must be"),
     ({"checkpoint_seconds": "a"}, "^checkpoint_seconds must be"), ({"scheme": "mass", "limits": None}, "^limits"),
     ({"out": "/proc/ibtheory-run.nc"}, r"out '/proc/ibtheory-run.nc' is not writable")],
)
def test_bad_input_fails_before_training(task, kwargs, match, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(run_module, "iter_training", boom)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        nets.train(task, **kwargs)
    assert time.perf_counter() - t0 < 5


def test_out_directory_is_refused_before_training(task, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(run_module, "iter_training", boom)
    with pytest.raises(ValueError, match=r"^out .* is a directory; give a file path"):
        nets.train(task, out=tmp_path, **SMALL)


def test_numpy_scalars_are_accepted_as_the_python_numbers_they_hold(task):
    kw = dict(SMALL, epochs=2, snapshots=3)
    numpy_kw = dict(kw, repeats=np.int64(2), epochs=np.int32(2), lr=np.float32(1e-3), train_fraction=np.float64(0.75),
                    seed=np.uint8(4), n_bins=np.int16(20), noise_var=np.float32(0.25), estimators="binning")
    a = nets.train(task, **numpy_kw)
    b = nets.train(task, **dict(kw, repeats=2, epochs=2, lr=float(np.float32(1e-3)), train_fraction=0.75, seed=4,
                                n_bins=20, noise_var=0.25, estimators=("binning",)))
    assert json.loads(a.attrs["config"]) == json.loads(b.attrs["config"])
    np.testing.assert_array_equal(a["checkpoint_params"].values, b["checkpoint_params"].values)
    np.testing.assert_array_equal(a["I_XT"].values, b["I_XT"].values)


def test_runner_train_grid_refuses_what_train_refuses():
    """The runner's train kind checks a grid with train's own argument checks before any task runs (its field
    accepts n_bins >= 1; train needs 2)."""
    match = "n_bins must be an integer >= 2, got 1$"
    with pytest.raises(ValueError, match=match):
        nets.train(tasks.tishby(), **dict(SMALL, n_bins=1))
    with pytest.raises(ValueError, match=match):
        runner.load_grid({"kind": "train", "fixed": {"repeats": 2, "epochs": 1, "n_bins": 1}})


def test_soft_task_samples_labels_per_repeat():
    soft = tasks.tishby(gamma=tasks.TISHBY_SOFT_GAMMA)
    ds = nets.train(soft, **dict(SMALL, repeats=4, epochs=1, snapshots=2))
    labels = ds["labels"].values
    p1 = tasks.conditional(soft["p_xy"].values)[1][:, 1]
    assert not np.array_equal(labels[0], labels[1]), "each repeat draws its own labels"
    assert abs(labels.mean() - p1.mean()) < 0.02, "sampled labels follow p(y=1|x) on average (0.02)"
    unsure = (p1 > 0.3) & (p1 < 0.7)
    assert 0.2 < labels[:, unsure].mean() < 0.8
    assert ds.attrs["task_rule"] == "soft" and ds.attrs["task_gamma"] == pytest.approx(tasks.TISHBY_SOFT_GAMMA)


def test_gradient_statistics_match_a_plain_torch_reference(task):
    """Repeat 1 alone, replayed with torch.nn layers and torch.optim.Adam on the same minibatches."""
    from ibtheory.nets.loop import TrainConfig, iter_training, prepare

    cfg = TrainConfig(hidden=(6, 4), repeats=2, epochs=1, snapshots=2, batch_size=700, dtype="float64")
    setup = prepare(task, cfg)
    snap = list(iter_training(task, cfg, setup=setup))[-1]
    train_idx = np.nonzero(setup.train_mask)[1].reshape(2, -1)
    gidx = np.take_along_axis(train_idx, data.epoch_orders(setup.keys, 1, train_idx.shape[1]), axis=1)
    xe = setup.features[gidx].transpose(0, 2, 1)  # (R, n_in, n_train) in minibatch order
    ye = setup.labels[np.arange(2)[:, None], gidx]
    r = 1
    layers = [torch.nn.Linear(i, o).double() for i, o in zip((12, 6, 4), (6, 4, 2), strict=True)]
    with torch.no_grad():
        for lin, w in zip(layers, setup.weights, strict=True):
            lin.weight.copy_(torch.from_numpy(w[r]).T)
            lin.bias.zero_()
    net = torch.nn.Sequential(layers[0], torch.nn.Tanh(), layers[1], torch.nn.Tanh(), layers[2])
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    grads = [[] for _ in layers]
    x, y = torch.from_numpy(xe[r].T), torch.from_numpy(ye[r])
    for s in range(0, x.shape[0], cfg.batch_size):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[s:s + cfg.batch_size]), y[s:s + cfg.batch_size]).backward()
        for g, lin in zip(grads, layers, strict=True):
            g.append(lin.weight.grad.detach().clone().numpy())
        opt.step()
    for j, g in enumerate(grads):
        g = np.stack(g)  # (K, out, in)
        mean_norm = np.linalg.norm(g.mean(0))
        std_norm = np.sqrt(g.var(0, ddof=1).sum())
        assert_allclose([snap.grad_mean_norm[j, r], snap.grad_std_norm[j, r]], [mean_norm, std_norm], rtol=1e-8,
                        err_msg=f"layer {j + 1}: |mean g| and sqrt(tr Cov g) vs torch reference (rtol 1e-8)")


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_hand_written_backprop_equals_autograd(activation):
    from ibtheory.nets.model import BatchedMLP, init_weights

    widths = (12, 6, 4, 2)
    weights = init_weights(widths, data.repeat_generators(0, np.arange(3)))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 12, 40, dtype=torch.float64, generator=gen)
    y = torch.randint(0, 2, (3, 40), generator=gen)
    manual = BatchedMLP(widths, activation, weights, dtype=torch.float64)
    auto = BatchedMLP(widths, activation, weights, dtype=torch.float64)
    with torch.no_grad():  # non-zero biases so that relu/hardtanh kinks are exercised away from 0
        for bm, ba in zip(manual.biases, auto.biases, strict=True):
            b = torch.randn(ba.shape, dtype=torch.float64, generator=gen)
            bm.copy_(b)
            ba.copy_(b)
    loss_m = manual.loss_and_grad(x, y)
    loss_a = torch.nn.functional.cross_entropy(auto(x)[-1], y, reduction="sum") / 40
    loss_a.backward()
    assert_allclose(float(loss_m), float(loss_a.detach()), rtol=1e-12)
    for pm, pa in zip(manual.parameters(), auto.parameters(), strict=True):
        assert_allclose(pm.grad.numpy(), pa.grad.numpy(), rtol=1e-9, atol=1e-12,
                        err_msg=f"{activation}: hand-written gradient vs autograd (rtol 1e-9)")
