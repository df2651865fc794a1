"""``ibtheory langevin`` end to end (small), and the Langevin figures."""

import numpy as np

from ibtheory import store
from ibtheory.cli import main


def test_cli_langevin_writes_nc_and_png(tmp_path, capsys):
    rc = main(["langevin", "--potential", "double-well", "--beta", "4", "--particles", "2000", "--steps", "200",
               "--dt", "0.02", "--out", str(tmp_path), "--no-progress", "--seed", "3"])
    assert rc == 0
    ds = store.load(tmp_path / "langevin.nc")
    for name in ("p_hist", "tv", "kl", "free_energy", "gibbs_density", "position_mean"):
        assert name in ds, name
    assert ds["kl"].attrs["units"] == "bits"
    assert ds["tv"].values[-1] < ds["tv"].values[0]
    assert store.config_of(ds)["beta"] == 4.0
    for png in ("density.png", "free_energy.png"):
        assert (tmp_path / png).stat().st_size > 10_000
    assert "spectral gap" in capsys.readouterr().out


def test_cli_langevin_bad_input_is_an_error_not_a_traceback(tmp_path, capsys):
    rc = main(["langevin", "--beta", "-1", "--particles", "10", "--steps", "2", "--out", str(tmp_path),
               "--no-progress"])
    assert rc == 2
    assert "beta" in capsys.readouterr().err


def test_kramers_and_sgd_figures(tmp_path):
    from ibtheory.plots.langevin import kramers_check, sgd_vs_lyapunov

    fig = kramers_check([4, 5], [70, 185], [2, 5], [69.3, 182.4], [60.6, 164.8])
    fig.savefig(tmp_path / "k.png")
    w = np.random.default_rng(0).multivariate_normal([0, 0], [[1, 0.5], [0.5, 2]], size=500)
    fig = sgd_vs_lyapunov(w, np.array([[1, 0.5], [0.5, 2]]))
    fig.savefig(tmp_path / "s.png")
    assert (tmp_path / "k.png").stat().st_size > 5000 and (tmp_path / "s.png").stat().st_size > 5000
