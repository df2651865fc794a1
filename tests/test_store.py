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
