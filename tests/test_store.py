"""netCDF4 storage: exact round trips, provenance, atomic writes and clear errors."""

import json
import os

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_array_equal

from ibtheory import store, tasks


def test_round_trip_is_exact(tmp_path):
    ds = store.with_provenance(tasks.tishby(gamma=19.05), config={"gamma": 19.05, "name": "tishby"}, seed=7)
    path = store.save(ds, tmp_path / "sub" / "task.nc")
    back = store.load(path)
    xr.testing.assert_identical(back.drop_attrs(), ds.drop_attrs())
    for key in ("ibtheory_version", "config", "seed", "created", "I_XY", "name"):
        assert back.attrs[key] == ds.attrs[key], key
    assert store.config_of(back) == {"gamma": 19.05, "name": "tishby"}
    assert back.attrs["seed"] == 7


def test_save_adds_provenance_and_cleans_attrs(tmp_path):
    ds = xr.Dataset({"I_XT": ("epoch", np.arange(3.0), {"units": "bits", "flag": True})})
    ds.attrs["nested"] = {"a": [1, 2]}
    ds.attrs["none"] = None
    back = store.load(store.save(ds, tmp_path / "r.nc"))
    assert "ibtheory_version" in back.attrs
    assert back["I_XT"].attrs["flag"] == 1
    assert json.loads(back.attrs["nested"]) == {"a": [1, 2]}
    assert_array_equal(back["I_XT"].values, np.arange(3.0))


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "r.nc"
    store.save(xr.Dataset({"a": ("x", [1.0])}), path)
    before = path.read_bytes()

    def boom(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        store.save(xr.Dataset({"a": ("x", [2.0])}), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["r.nc"]


def test_missing_truncated_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        store.load(tmp_path / "missing.nc")
    path = store.save(tasks.binary_symmetric(0.1), tmp_path / "ok.nc")
    data = path.read_bytes()
    (tmp_path / "cut.nc").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        store.load(tmp_path / "cut.nc")
    xr.Dataset({"a": ("x", [1.0])}).to_netcdf(tmp_path / "foreign.nc", engine="netcdf4")
    with pytest.raises(ValueError, match="not written by ibtheory"):
        store.load(tmp_path / "foreign.nc")
    with pytest.raises(ValueError, match="ds must be"):
        store.save({"a": 1}, tmp_path / "x.nc")


# ---------------------------------------------------------------- checksums, refused inputs, paths, kills
def _distinctive(shape=(64, 32)) -> np.ndarray:
    """An array whose bytes occur once in a file: a pseudo-random table normalised to sum 1."""
    a = np.random.default_rng(12345).random(shape)
    return a / a.sum()


def test_every_array_variable_is_stored_with_a_fletcher32_checksum(tmp_path):
    import netCDF4

    ds = xr.Dataset({"p_xy": (("x", "y"), _distinctive()), "n": ("x", np.arange(64)), "flag": ("y", np.ones(32, bool)),
                     "label": ("x", np.array([f"s{i}" for i in range(64)])), "total": ((), 1.0)})
    path = store.save(ds, tmp_path / "c.nc")
    with netCDF4.Dataset(path) as nc:
        checked = {name for name, var in nc.variables.items() if var.filters()["fletcher32"]}
    assert checked == {"p_xy", "n", "flag"}  # not the scalar, not the variable-length strings
    xr.testing.assert_identical(store.load(path).drop_attrs(), ds.drop_attrs())


def test_a_flipped_byte_in_the_data_fails_to_load(tmp_path):
    """Without a checksum the corrupted table loaded silently with a sum far from 1."""
    p = _distinctive()
    path = store.save(xr.Dataset({"p_xy": (("x", "y"), p)}), tmp_path / "p.nc")
    data = bytearray(path.read_bytes())
    start = data.find(p.tobytes())
    assert start > 0 and data.find(p.tobytes(), start + 1) < 0, "the array's bytes must occur exactly once"
    data[start + 8 * 1000 + 7] ^= 0x40  # the exponent byte of element 1000 (little-endian float64)
    bad = tmp_path / "bad.nc"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum") as info:
        store.load(bad)
    assert str(bad) in str(info.value) and "corrupt" in str(info.value)
    assert_array_equal(store.load(path)["p_xy"].values, p)  # the intact file still loads exactly


def test_a_resaved_loaded_dataset_keeps_its_checksums(tmp_path):
    import netCDF4

    first = store.save(xr.Dataset({"a": ("x", np.arange(10.0)), "s": ((), 2.0)}), tmp_path / "a.nc")
    again = store.save(store.load(first).isel(x=slice(0, 4)), tmp_path / "b.nc")
    with netCDF4.Dataset(again) as nc:
        assert nc["a"].filters()["fletcher32"] and nc["a"].chunking() != "contiguous"
    assert_array_equal(store.load(again)["a"].values, np.arange(4.0))


@pytest.mark.parametrize(
    ("ds", "message"),
    [
        (xr.Dataset({"mixed": ("x", np.array([1.0, "a"], dtype=object))}), r"variable 'mixed' has dtype object"),
        (xr.Dataset({"holes": ("x", np.array(["a", None], dtype=object))}), r"variable 'holes' has dtype object"),
        (xr.Dataset({"objs": ((), np.array({1: 2}, dtype=object))}), r"variable 'objs' has dtype object holding dict"),
        (xr.Dataset({"z": ("x", np.array([1 + 2j]))}), r"variable 'z' is complex"),
        (xr.Dataset({"h": ("x", np.ones(2, np.float16))}), r"variable 'h' is float16"),
        (xr.Dataset({"a": ("x", [1.0])}, attrs={"tags": {"a", "b"}}), r"attribute 'tags' of the Dataset.*set"),
        (xr.Dataset({"a": ("x", [1.0], {"scale": 1j})}), r"attribute 'scale' of variable 'a'.*complex"),
        (xr.Dataset({"a": ("x", [1.0])}, attrs={"opts": {"k": {1, 2}}}), r"attribute 'opts' of the Dataset.*JSON"),
        (xr.Dataset({"a": ("x", [1.0])}, attrs={"m": np.eye(2)}), r"attribute 'm' of the Dataset.*shape \(2, 2\)"),
        (xr.Dataset({"a": ("x", [1.0])}, attrs={"o": object()}), r"attribute 'o' of the Dataset.*object"),
    ],
    ids=["object-mixed", "object-none", "object-dict", "complex", "float16", "set-attr", "complex-attr",
         "set-in-dict-attr", "2d-attr", "object-attr"],
)
def test_unstorable_data_is_a_value_error_naming_it(ds, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        store.save(ds, tmp_path / "x.nc")
    assert os.listdir(tmp_path) == []  # no result, no temporary file


def test_object_arrays_of_strings_are_stored(tmp_path):
    ds = xr.Dataset({"name": ("x", np.array(["tanh", "relu"], dtype=object))})
    assert store.load(store.save(ds, tmp_path / "s.nc"))["name"].values.tolist() == ["tanh", "relu"]


def test_with_provenance_refuses_a_config_json_cannot_hold():
    with pytest.raises(ValueError, match="config cannot be stored as JSON"):
        store.with_provenance(xr.Dataset(), config={"layers": {1, 2}})


def test_folders_and_files_in_the_wrong_place(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("")
    with pytest.raises(IsADirectoryError, match="is a directory") as info:
        store.load(tmp_path / "d")
    assert info.value.filename == str(tmp_path / "d")
    with pytest.raises(ValueError, match="is a directory"):
        store.save(xr.Dataset(), tmp_path / "d")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        store.save(xr.Dataset(), tmp_path / "f" / "x.nc")
    assert sorted(os.listdir(tmp_path)) == ["d", "f"]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc (unwritable even for root)")
def test_an_unwritable_folder_is_an_os_error_naming_the_target_not_the_temporary_file():
    with pytest.raises(OSError) as info:
        store.save(xr.Dataset({"a": ("x", [1.0])}), "/proc/ibtheory-test.nc")
    assert info.value.filename == "/proc/ibtheory-test.nc" and ".tmp" not in str(info.value)


def test_remove_stale_temporaries_removes_only_what_save_leaves(tmp_path):
    path = tmp_path / "r.nc"
    store.save(xr.Dataset({"a": ("x", [1.0])}), path)
    stale = [tmp_path / ".r.nc.ab12_xyz.tmp", tmp_path / ".r.nc.0000abcd.tmp"]
    other = [tmp_path / ".r.nc.notes.tmp", tmp_path / "r.nc.tmp", tmp_path / ".other.nc.ab12_xyz.tmp.keep"]
    for p in stale + other:
        p.write_bytes(b"x")
    assert sorted(store.remove_stale_temporaries(path)) == sorted(stale)
    assert sorted(os.listdir(tmp_path)) == sorted(["r.nc"] + [p.name for p in other])
    (tmp_path / ".s.nc.q1w2e3r4.tmp").write_bytes(b"x")
    assert store.remove_stale_temporaries(tmp_path) == [tmp_path / ".s.nc.q1w2e3r4.tmp"]  # a folder: all of its
    assert store.remove_stale_temporaries(tmp_path / "missing" / "r.nc") == []


_SAVER = """
import sys
import time
import numpy as np
import xarray as xr
from ibtheory import store

path, block = sys.argv[1], sys.argv[2] == "block"
if block:  # the third save writes its temporary file completely, then waits to be killed before the rename
    write = xr.Dataset.to_netcdf

    def write_then_wait(self, *args, **kwargs):
        out = write(self, *args, **kwargs)
        if self.attrs.get("version") == 1 and k >= 2:
            print("written", flush=True)
            time.sleep(600)
        return out

    xr.Dataset.to_netcdf = write_then_wait
versions = [xr.Dataset({"a": (("x", "y"), np.full((800, 1000), float(v)))}, attrs={"version": v}) for v in (1, 2)]
k = 0
while True:
    store.save(versions[k % 2], path)
    k += 1
    print(k, flush=True)
"""


@pytest.mark.parametrize(("when", "seed"), [("random", 1), ("random", 2), ("before-rename", 0)])
def test_a_kill_during_real_saves_leaves_the_old_or_the_new_complete_file(when, seed, tmp_path):
    """A child process saves a 6.4 MB Dataset over and over and is SIGKILLed at a random moment (seeded; the child
    spends nearly all its time inside save), or right after writing its temporary file and before renaming it.
    ``path`` then holds one complete version that loads cleanly, and :func:`store.remove_stale_temporaries` leaves
    no temporary file behind."""
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "big.nc"
    child = subprocess.Popen([sys.executable, "-c", _SAVER, str(path), "block" if when != "random" else "run"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "1", "the child must finish its first save"
        if when == "random":
            time.sleep(float(np.random.default_rng(seed).uniform(0.0, 0.3)))
        else:
            lines = [child.stdout.readline().strip() for _ in range(2)]
            assert lines == ["2", "written"], lines
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    back = store.load(path)  # never half-written
    version = back.attrs["version"]
    assert version in (1, 2) and (when == "random" or version == 2)
    assert_array_equal(back["a"].values, np.full((800, 1000), float(version)))
    leftovers = store.remove_stale_temporaries(path)
    assert when == "random" or len(leftovers) == 1  # the finished but never renamed temporary file
    store.save(back, path)
    assert [p.name for p in tmp_path.iterdir()] == ["big.nc"]
    assert_array_equal(store.load(path)["a"].values, back["a"].values)


def test_a_signal_during_a_save_is_delivered_after_the_file_is_complete(tmp_path, monkeypatch):
    """SIGTERM (handled like Ctrl-C) arriving inside the netCDF writer used to raise there, where it could leave the
    writer's lock held and hang the checkpoint written next; it is now held back until the file is in place."""
    import os
    import signal

    from ibtheory import _signals
    from ibtheory import store as store_module

    ds = xr.Dataset({"v": ("x", np.arange(5.0))})
    real_chmod = os.chmod

    def chmod_then_signal(path, mode):  # the signal arrives in the middle of the save
        real_chmod(path, mode)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(store_module.os, "chmod", chmod_then_signal)
    with _signals.terminate_as_interrupt(), pytest.raises(_signals.Terminated):
        store.save(ds, tmp_path / "a.nc")
    monkeypatch.undo()
    xr.testing.assert_identical(store.load(tmp_path / "a.nc")["v"], ds["v"])
    assert store.remove_stale_temporaries(tmp_path / "a.nc") == []
    reached = []
    with _signals.terminate_as_interrupt(), pytest.raises(_signals.Terminated):
        with _signals.signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            reached.append(True)  # not interrupted inside the block
    assert reached == [True]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL and signal.getsignal(signal.SIGINT) is \
        signal.default_int_handler
