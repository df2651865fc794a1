"""dask.distributed: a real LocalCluster (2 worker processes) gives the in-process result, even when a worker dies."""

import os
import signal

import pytest
import xarray as xr

from ibtheory import runner, store

pytest.importorskip("distributed")

GRID = {"kind": "plugin_mi", "seed": 4, "fixed": {"repeats": 6, "repeats_per_task": 3},
        "axes": {"p": [0.05, 0.25], "n": [30, 300]}}


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster of 2 single-threaded worker processes for this module (start-up costs seconds)."""
    with runner.Dask(workers=2) as executor:
        yield executor


def test_local_cluster_matches_in_process(tmp_path, cluster):
    ref = runner.run_sweep(GRID, tmp_path / "here", progress=False).dataset
    res = runner.run_sweep(GRID, tmp_path / "dask", cluster, progress=False)
    assert not res.failures
    assert len({e.worker for e in res.events}) == 2, "both workers should have run tasks"
    xr.testing.assert_identical(store.without_attrs(ref), store.without_attrs(res.dataset))
    # connecting to the same scheduler by address works too, and a re-run skips everything
    with runner.Dask(address=cluster.cluster.scheduler_address) as remote:
        assert remote.workers == 2
        again = runner.run_sweep(GRID, tmp_path / "dask", remote, progress=False)
    assert {e.status for e in again.events} == {"skipped"}


def test_killed_worker_mid_run_loses_nothing(tmp_path, cluster):
    """SIGKILL a busy worker after the first task finished: its tasks are re-run elsewhere (or reported)."""
    grid = dict(GRID, fixed={**GRID["fixed"], "delay_s": 0.4})
    ref = runner.run_sweep(dict(GRID), tmp_path / "here", progress=False).dataset
    client = cluster.client
    events, killed = [], None
    for ev in runner.iter_sweep(grid, tmp_path / "dask", cluster):
        events.append(ev)
        if killed is None and ev.status == "done":
            busy = [w for w, keys in client.processing().items() if keys]
            pids = client.run(os.getpid, workers=busy[:1])
            killed = next(iter(pids.values()))
            os.kill(killed, signal.SIGKILL)
    assert killed is not None and len(events) == 8
    done = [e for e in events if e.status == "done"]
    failed = [e for e in events if e.status == "failed"]
    assert len(done) + len(failed) == 8
    for ev in failed:  # only acceptable failure: the scheduler gave up on the dead worker, and says so
        assert "KilledWorker" in ev.error, ev.describe()
    merged = runner.merge(grid, tmp_path / "dask")
    assert merged.attrs["tasks_missing"] == len(failed)
    finished = [e.spec.point for e in done]
    for point in finished:  # every finished task equals the in-process numbers (delay_s does not change them)
        xr.testing.assert_identical(store.without_attrs(ref.sel(point))["I_plugin"],
                                    store.without_attrs(merged.sel(point))["I_plugin"])
    assert not failed, f"dask did not retry the lost tasks: {[e.describe() for e in failed]}"


def _set_digest(value):
    import ibtheory.runner.sweep as sweep

    old, sweep._RUNNER_DIGEST = sweep._RUNNER_DIGEST, value
    return old


def test_workers_running_other_code_are_refused_before_anything_runs(tmp_path, cluster):
    old = cluster.client.run(_set_digest, "0000000000000000")
    try:
        with pytest.raises(ValueError, match="run different code for kind 'plugin_mi'"):
            runner.run_sweep(GRID, tmp_path / "x", cluster, progress=False)
    finally:
        cluster.client.run(_set_digest, next(iter(old.values())))
    assert not (tmp_path / "x" / "tasks").exists()
