"""``ibtheory langevin`` end to end (small), and the Langevin figures."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import integrate

from ibtheory import store
from ibtheory.cli import main
from ibtheory.dynamics import DoubleWell, langevin


def test_cli_langevin_writes_nc_and_png(tmp_path, capsys):
    rc = main(["langevin", "--potential", "double-well", "--beta", "4", "--particles", "2000", "--steps", "200",
               "--dt", "0.02", "--out", str(tmp_path), "--no-progress", "--seed", "3", "--records", "10"])
    assert rc == 0
    ds = store.load(tmp_path / "langevin.nc")
    for name in ("p_hist", "tv", "kl", "free_energy", "gibbs_density", "position_mean"):
        assert name in ds, name
    assert ds["kl"].attrs["units"] == "bits"
    assert ds["tv"].values[-1] < ds["tv"].values[0]
    assert store.config_of(ds)["beta"] == 4.0
    for png in ("density.png", "free_energy.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "spectral gap" in capsys.readouterr().out
    # --records 10 over 200 steps: every 20 steps, times 0, 0.4, ..., 4.0
    assert_allclose(ds["time"].values, 0.02 * np.arange(0, 201, 20), rtol=1e-14)
    # the histograms are those of the Python API with the same settings, and hold every particle
    api = langevin(DoubleWell(1.0, 0.0), np.full(2000, -1.0), 4.0, 0.02, 200, scheme="leimkuhler-matthews",
                   record=("histogram", "moments"), bins=np.linspace(-2.5, 2.5, 61), every=20, seed=3,
                   progress=False)
    assert_array_equal(ds["p_hist"].values, api["p_hist"].values)
    assert_allclose(ds["p_hist"].sum("x") + ds["outside"], 1.0, rtol=1e-14)
    assert ds["position_mean"].values[0].tolist() == [-1.0] and ds["position_var"].values[0].tolist() == [0.0]
    # Gibbs density exp(-beta L) / Z of L = (x^2 - 1)^2, its bin masses and entropy, by scipy quadrature here
    def weight(x):
        return np.exp(-4.0 * (x * x - 1.0) ** 2)

    z = integrate.quad(weight, -np.inf, np.inf)[0]
    assert_allclose(ds["gibbs_density"].values, weight(ds["x_fine"].values) / z, rtol=1e-6, atol=1e-12)
    edges = ds["x_edges"].values
    masses = np.array([integrate.quad(weight, a, b)[0] / z for a, b in zip(edges[:-1], edges[1:], strict=True)])
    assert_allclose(ds["gibbs_p"].values, masses, rtol=1e-6, atol=1e-12)  # Simpson, 64 steps per bin
    p = ds["p_hist"].values
    tv = 0.5 * (np.abs(p - masses).sum(1) + np.abs(p.sum(1) - masses.sum()))
    assert_allclose(ds["tv"].values, tv, atol=1e-9)
    # differential entropy -int rho log2 rho, with -log rho = beta L + log Z
    entropy = integrate.quad(lambda x: weight(x) / z * (4.0 * (x * x - 1.0) ** 2 + np.log(z)), -np.inf, np.inf)[0]
    entropy /= np.log(2.0)
    assert_allclose(ds.attrs["gibbs_entropy_bits"], entropy, rtol=1e-5)


def test_cli_langevin_bad_input_is_an_error_not_a_traceback(tmp_path, capsys):
    rc = main(["langevin", "--beta", "-1", "--particles", "10", "--steps", "2", "--out", str(tmp_path),
               "--no-progress"])
    assert rc == 2
    assert "beta" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--records", "0"], "--records must be an integer >= 1, got 0"),
    (["--records", "-5"], "--records must be an integer >= 1, got -5"),
    (["--steps", "-1"], "n_steps must be an integer >= 0, got -1"),
])
def test_cli_langevin_bad_counts_are_errors_not_tracebacks(argv, message, tmp_path, capsys):
    """`--records 0` used to raise ZeroDivisionError."""
    assert main(["langevin", *argv, "--particles", "10", "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"ibtheory langevin: error: {message}"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"every": 0}, "every must be an integer >= 1, got 0"),
    ({"every": "a"}, "every must be an integer, got 'a'"),
    ({"every": 2.5}, "every must be an integer, got 2.5"),
    ({"n_steps": None}, "n_steps must be an integer, got None"),
    ({"n_steps": "10"}, "n_steps must be an integer, got '10'"),
    ({"hist_dim": 1, "record": "histogram"}, "hist_dim must be an integer <= 0, got 1"),
])
def test_langevin_counts_are_validated_naming_the_argument(kwargs, message):
    args = {"n_steps": 10, "record": "moments", **kwargs}
    with pytest.raises(ValueError, match=f"^{message}"):
        langevin(DoubleWell(1.0, 0.0), np.zeros(5), 4.0, 0.01, progress=False, **args)


def test_langevin_takes_numpy_integers():
    ds = langevin(DoubleWell(1.0, 0.0), np.zeros(5), 4.0, 0.01, np.int64(10), every=np.int32(5), record="moments",
                  progress=False, seed=0)
    assert ds["step"].values.tolist() == [0, 5, 10]


def test_kramers_and_sgd_figures(tmp_path):
    from ibtheory.plots.langevin import kramers_check, sgd_vs_lyapunov

    fig = kramers_check([4, 5], [70, 185], [2, 5], [69.3, 182.4], [60.6, 164.8])
    fig.savefig(tmp_path / "k.png")
    w = np.random.default_rng(0).multivariate_normal([0, 0], [[1, 0.5], [0.5, 2]], size=500)
    fig = sgd_vs_lyapunov(w, np.array([[1, 0.5], [0.5, 2]]))
    fig.savefig(tmp_path / "s.png")
    assert (tmp_path / "k.png").stat().st_size > 5000 and (tmp_path / "s.png").stat().st_size > 5000
