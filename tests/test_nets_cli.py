"""`ibtheory train` and `ibtheory plane` end to end on a tiny run: the stored run is the Python API's, the figures
are PNGs; output paths are checked before training, and SIGTERM checkpoints and exits 143."""

import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose

from ibtheory import nets, store, tasks
from ibtheory.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_train_then_plane(tmp_path, capsys):
    run = tmp_path / "run.nc"
    fig = tmp_path / "run.png"
    rc = main(["train", "--repeats", "2", "--epochs", "4", "--snapshots", "4", "--hidden", "5-3", "--out", str(run),
               "--plot", str(fig), "--no-progress", "--estimators", "binning,ensemble"])
    assert rc == 0 and run.is_file() and min(_png_size(fig)) > 100
    ds = store.load(run)
    assert ds.attrs["complete"] == 1 and ds.sizes["layer"] == 3 and "I_XT_ensemble" in ds
    out = capsys.readouterr().out
    assert "SNR transition epoch" in out
    # the stored numbers are those of the Python API with the same settings (the CLI passes its options on)
    api = nets.train(tasks.tishby(), hidden=(5, 3), repeats=2, epochs=4, snapshots=4,
                     estimators=("binning", "ensemble"), seed=0, progress=False)
    xr.testing.assert_equal(ds.drop_attrs(), api.drop_attrs())
    # and the printed accuracy is the stored one; binned I(X;T) lies in [0, H(X)] = [0, 12] bits and the output
    # layer's I(T;Y) cannot exceed I(X;Y) = 0.999157 bits (data processing)
    acc = float(ds["test_accuracy"].isel(epoch=-1).mean())
    assert f"test accuracy {acc:.4f}" in out
    assert float(ds["I_XT"].min()) >= 0 and float(ds["I_XT"].max()) <= 12 + 1e-9
    assert float(ds["I_TY"].max()) <= 0.999157 + 1e-6
    for kind in ("plane", "gradients", "learning", "all"):
        out = tmp_path / f"{kind}.png"
        assert main(["plane", str(run), "--out", str(out), "--kind", kind]) == 0
        assert min(_png_size(out)) > 100
    assert main(["plane", str(run), "--out", str(tmp_path / "k.png"), "--estimator", "kde_upper"]) == 2


def test_bad_train_arguments_exit_2(tmp_path):
    assert main(["train", "--train-fraction", "1.5", "--out", str(tmp_path / "x.nc")]) == 2
    assert main(["train", "--hidden", "5-0", "--out", str(tmp_path / "x.nc")]) == 2
    assert not (tmp_path / "x.nc").exists()


@pytest.mark.parametrize("where", ["/proc/ibtheory-run.nc", "{FILE}/run.nc", "{DIR}"])
def test_train_checks_its_output_before_training(where, tmp_path, monkeypatch, capsys):
    """`train --out /proc/r.nc` used to train to the end, then fail naming a temporary file."""
    if where.startswith("/proc") and not Path("/proc/self").is_dir():
        pytest.skip("needs Linux /proc")
    (tmp_path / "FILE").write_text("")
    (tmp_path / "DIR").mkdir()
    out = where.format(FILE=tmp_path / "FILE", DIR=tmp_path / "DIR")

    def no_training(*args, **kwargs):
        raise AssertionError("training started before --out was checked")

    monkeypatch.setattr(nets, "train", no_training)
    assert main(["train", "--out", out, "--epochs", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ibtheory train: error: --out") or err.startswith("ibtheory train: error: the folder")
    assert out in err and ".tmp" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_sigterm_during_train_saves_a_checkpoint_and_exits_143(tmp_path):
    """What `timeout` and batch schedulers do: SIGTERM is handled like Ctrl-C (the run is saved as incomplete and
    resumable), one line on stderr, exit code 143 = 128 + SIGTERM."""
    run = tmp_path / "run.nc"
    cmd = [sys.executable, "-m", "ibtheory", "train", "--repeats", "2", "--epochs", "100000", "--snapshots", "2000",
           "--hidden", "5-3", "--out", str(run), "--checkpoint-seconds", "0.01", "--no-progress"]
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not run.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run.exists(), "no checkpoint was written"
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=120)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 143, err
    assert err.strip() == "ibtheory train: terminated (SIGTERM)", err
    ds = store.load(run)
    assert ds.attrs["complete"] == 0 and 0 <= ds.attrs["checkpoint_epoch"] < 100000
    assert np.all(np.isfinite(ds["checkpoint_params"].values))
    assert_allclose(ds["epoch"].values[-1], ds.attrs["checkpoint_epoch"])


def test_train_options_are_generated_from_train_config(monkeypatch):
    """One source for the paper's setting: every TrainConfig field but repeat_start is an `ibtheory train` option
    whose default is the field's; changing the field's default changes the option's."""
    import dataclasses

    from ibtheory.cli import build_parser
    from ibtheory.nets import TrainConfig

    args = build_parser().parse_args(["train"])
    for f in dataclasses.fields(TrainConfig):
        if f.name != "repeat_start":
            assert getattr(args, f.name) == f.default, f.name
    assert args.hidden == (10, 7, 5, 4, 3) and args.lr == 4e-4 and args.dtype == "float32"
    lr = next(f for f in dataclasses.fields(TrainConfig) if f.name == "lr")
    monkeypatch.setattr(lr, "default", 1e-3)
    assert build_parser().parse_args(["train"]).lr == 1e-3
    parsed = build_parser().parse_args(["train", "--dtype", "float64", "--hidden", "5-3", "--name", "gaussian"])
    assert parsed.dtype == "float64" and parsed.hidden == (5, 3) and parsed.name == "gaussian_discretized"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--optimizer", "adagrad"])
