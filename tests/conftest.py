"""Shared fixtures: where the authors' data lives (beside the project root), skipping cleanly when absent."""

from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60)
settings.load_profile("ci")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The folder with var_u.mat and mnist/, or skip the test when this checkout has none."""
    if not (SHARED_DATA / "var_u.mat").is_file():
        pytest.skip("the authors' data (../shared/data) is not present on this machine")
    return SHARED_DATA


@pytest.fixture
def interrupt_measuring(monkeypatch):
    """``arm(n)`` makes the n-th measuring call of ``nets.train`` raise KeyboardInterrupt (Ctrl-C between two
    snapshots); ``disarm()`` puts the real ``measure_snapshot`` back.  Returns (arm, disarm)."""
    from ibtheory.nets import run as run_module

    real = run_module.measure_snapshot

    def arm(n: int) -> None:
        calls = {"n": 0}

        def flaky(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(run_module, "measure_snapshot", flaky)

    def disarm() -> None:
        monkeypatch.setattr(run_module, "measure_snapshot", real)

    return arm, disarm
