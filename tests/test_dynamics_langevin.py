"""Langevin schemes against closed forms: OU stationary variances, double-well Gibbs densities, scheme orders,
input validation and divergence detection (issue 6)."""

import re

import numpy as np
import pytest
import sympy as sp
from numpy.testing import assert_allclose

from ibtheory.dynamics import (
    CallablePotential,
    DoubleWell,
    Quadratic,
    SimulationDiverged,
    bin_probabilities,
    gibbs,
    histogram_free_energy,
    kl_bits,
    langevin,
    langevin_steps,
    sample_gibbs,
    total_variation,
    wasserstein1,
)
from ibtheory.dynamics.symbolic import ou_stationary_variances
from ibtheory.info import kl_rowwise

GRID = np.linspace(-3.5, 3.5, 7001)


def _ou_closed_forms(k, dt, beta):
    subs = {sp.Symbol("k", positive=True): k, sp.Symbol("dt", positive=True): dt,
            sp.Symbol("beta", positive=True): beta}
    return {name: float(expr.subs(subs)) for name, expr in ou_stationary_variances().items()}


@pytest.mark.parametrize("scheme", ["euler", "leimkuhler-matthews"])
def test_ou_stationary_variance_matches_discrete_closed_form(scheme):
    k, dt, beta = 2.0, 0.1, 1.5
    expected = _ou_closed_forms(k, dt, beta)[scheme]
    ds = langevin(Quadratic(k), np.zeros(200_000), beta, dt, 150, scheme=scheme, record="moments", every=5,
                  seed=11, progress=False)
    var = float(ds["position_var"].sel(dim=0).where(ds.time >= 5.0, drop=True).mean())  # 25 relaxation times burnt in
    assert abs(var / expected - 1) < 0.01, f"{scheme}: var {var:.5f} vs closed form {expected:.5f} (tol 1 %)"
    assert abs(expected - 1 / (beta * k)) > 0.04 / (beta * k) or scheme != "euler"  # EM's bias is not tiny


def test_torch_noise_backend_is_reproducible_and_gives_the_same_statistics():
    k, dt, beta = 2.0, 0.1, 1.5
    runs = [langevin(Quadratic(k), np.zeros(100_000), beta, dt, 100, scheme="leimkuhler-matthews",
                     record="moments", every=5, seed=11, noise="torch", progress=False) for _ in range(2)]
    assert_allclose(runs[0]["position_var"].values, runs[1]["position_var"].values, rtol=0, atol=0)
    var = float(runs[0]["position_var"].sel(dim=0).where(runs[0].time >= 5.0, drop=True).mean())
    assert abs(var * beta * k - 1) < 0.015, f"torch noise: var {var:.5f} vs 1/(beta k) (tol 1.5 %)"
    with pytest.raises(ValueError, match="noise"):
        langevin(Quadratic(k), np.zeros(3), beta, dt, 1, noise="cuda", progress=False)


def test_preconditioned_matrix_diffusion_keeps_gibbs_and_plain_one_gives_lyapunov():
    from scipy.linalg import solve_continuous_lyapunov

    h = np.array([[2.0, 0.4], [0.4, 1.0]])
    d = np.array([[1.0, 0.3], [0.3, 0.5]])
    beta, q = 2.0, Quadratic(h)

    def pooled_cov(ds, t_min):
        x = ds["position"].where(ds.time >= t_min, drop=True).values
        return np.cov(x.reshape(-1, 2).T, bias=True)

    pre = langevin(q, np.zeros((10_000, 2)), beta, 0.05, 400, scheme="leimkuhler-matthews", diffusion=d,
                   precondition=True, every=10, seed=3, progress=False)
    assert_allclose(pooled_cov(pre, 5.0), np.linalg.inv(h) / beta, rtol=0.03, atol=0.003,
                    err_msg="preconditioned LM must sample N(0, H^-1/beta) (tol 3 %)")
    plain = langevin(q, np.zeros((10_000, 2)), beta, 0.01, 1500, scheme="leimkuhler-matthews", diffusion=d,
                     every=25, seed=4, progress=False)
    lyap = solve_continuous_lyapunov(h, 2 * d / beta)
    assert_allclose(pooled_cov(plain, 5.0), lyap, rtol=0.04, atol=0.003,
                    err_msg="plain anisotropic noise: H S + S H = 2D/beta (tol 4 %)")


def test_position_dependent_diffusion_with_divergence_term_keeps_gibbs():
    def dfun(x):
        return 1.0 + 0.5 * x**2 / (1.0 + x**2)

    k, beta = 1.0, 1.0
    ds = langevin(Quadratic(k), np.zeros(20_000), beta, 0.01, 1500, diffusion=dfun, precondition=True,
                  record="moments", every=50, seed=8, progress=False)
    var = float(ds["position_var"].sel(dim=0).where(ds.time >= 3.0, drop=True).mean())
    assert abs(var - 1 / (beta * k)) < 0.03, f"variance {var:.4f} vs Gibbs 1/(beta k) = 1 (tol 0.03, O(dt) bias)"


@pytest.mark.parametrize("beta", [1.0, 2.0, 4.0])
def test_double_well_histogram_within_tv_001_of_gibbs(beta):
    """10^5 particles start from the Gibbs density at beta/2 (same well populations by symmetry, wrong shape)
    and relax for t = 3 (> 20 intra-well relaxation times 1/(8 h)); TV of a 20-bin histogram <= 0.01.
    The sampling floor of this TV is about 0.005 (sum of sqrt(p_k) / sqrt(2 pi N))."""
    dw, edges = DoubleWell(1.0), np.linspace(-2.5, 2.5, 21)
    x0 = sample_gibbs(dw, beta / 2, 100_000, GRID, seed=1)
    ds = langevin(dw, x0, beta, 0.02, 150, scheme="leimkuhler-matthews", record="histogram", bins=edges,
                  every=10, keep_final=True, seed=2, progress=False)
    q = bin_probabilities(dw, beta, edges)
    tv = total_variation(ds["p_hist"].isel(time=-1).values, q)
    assert tv <= 0.01, f"beta={beta}: TV {tv:.4f} > 0.01"
    tv0 = total_variation(ds["p_hist"].isel(time=0).values, q)
    assert tv0 > 3 * tv, f"start must be far from Gibbs: TV0 {tv0:.4f} vs TV {tv:.4f}"
    w1 = wasserstein1(ds["position_final"].values, dw, beta, GRID)
    assert w1 < 0.01, f"W1 {w1:.4f} (tol 0.01)"
    assert kl_bits(ds["p_hist"].isel(time=-1).values, q) < 5e-4
    # free energy of the histogram decreases toward F_Gibbs (up to histogram noise 1e-3)
    f = histogram_free_energy(ds["p_hist"].values, edges, dw, beta)
    f_eq = histogram_free_energy(q, edges, dw, beta)
    assert np.all(np.diff(f) <= 1e-3), f"free energy increased: {np.diff(f).max():.2e}"
    assert f[0] - f_eq > 10 * abs(f[-1] - f_eq), "free energy must relax toward F_Gibbs"


def test_euler_bias_is_first_order_and_leimkuhler_matthews_bias_is_smaller():
    """<x^2> of the double well at beta = 1: EM's error ~ c dt (halving dt halves it: ratio 2, tolerance [1.4,
    2.9] for the O(dt^2) remainder and noise); LM's error is O(dt^2), below the statistical error 4 sigma at
    dt = 0.04 where EM's error exceeds 8 sigma."""
    dw, beta = DoubleWell(1.0), 1.0
    g = gibbs(dw, beta, GRID)
    exact = float((g["density"] * g["x"] ** 2).integrate("x"))
    x0 = sample_gibbs(dw, beta, 40_000, GRID, seed=2)

    def bias(scheme, dt):
        ds = langevin(dw, x0, beta, dt, int(round(6 / dt)), scheme=scheme, record="moments",
                      every=int(round(0.1 / dt)), seed=3, progress=False)
        m2 = (ds["position_var"] + ds["position_mean"] ** 2).sel(dim=0).where(ds.time >= 1.0, drop=True).values
        return m2.mean() - exact, m2.std() / np.sqrt(len(m2) / 5)  # ~5 records per correlation time

    em1, s1 = bias("euler", 0.04)
    em2, _ = bias("euler", 0.02)
    lm1, _ = bias("leimkuhler-matthews", 0.04)
    sigma = max(s1, 2 * np.sqrt(2 * exact**2 / 40_000) / np.sqrt(10))
    assert abs(em1) > 8 * sigma, f"EM bias {em1:.4f} not visible over noise {sigma:.4f}"
    assert 1.4 < em1 / em2 < 2.9, f"EM bias ratio dt/(dt/2) = {em1 / em2:.2f}, first order expects 2"
    assert abs(lm1) < 4 * sigma, f"LM bias {lm1:.5f} exceeds 4 sigma = {4 * sigma:.5f}"
    assert abs(lm1) < abs(em1) / 5


def test_same_seed_same_numbers_and_records():
    dw = DoubleWell()
    a = langevin(dw, np.zeros(50), 2.0, 0.01, 20, record=("trajectory", "moments", "histogram"), seed=5,
                 progress=False)
    b = langevin(dw, np.zeros(50), 2.0, 0.01, 20, record=("trajectory", "moments", "histogram"), seed=5,
                 progress=False)
    assert_allclose(a["position"].values, b["position"].values, rtol=0, atol=0)
    assert a["position"].dims == ("time", "particle", "dim")
    assert_allclose(a["p_hist"].sum("x") + a["outside"], 1.0, rtol=1e-12)
    assert_allclose(a["position_mean"].values[:, 0], a["position"].values[:, :, 0].mean(1), rtol=1e-12)
    c = langevin(dw, np.zeros(50), 2.0, 0.01, 20, seed=6, progress=False)
    assert not np.allclose(a["position"].values[-1], c["position"].values[-1])
    states = list(langevin_steps(dw, np.zeros(3), 2.0, 0.01, 4, seed=0))
    assert [s.step for s in states] == [0, 1, 2, 3, 4]


def test_torch_autograd_callable_matches_analytic_gradient():
    import torch

    def quartic(x):
        return (x[:, 0] ** 2 - 1) ** 2 + 0.5 * x[:, 1] ** 2 + 0.0 * torch.sin(x[:, 0])

    pot = CallablePotential(quartic, dim=2)
    dw = DoubleWell(1.0, dim=2, stiffness=1.0)
    x = np.random.default_rng(0).normal(size=(7, 2))
    assert_allclose(pot.grad(x), dw.grad(x), rtol=1e-12)
    assert_allclose(pot.value(x), dw.value(x), rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"dt": 0.0}, "dt"), ({"dt": -1.0}, "dt"), ({"beta": 0.0}, "beta"), ({"beta": -2.0}, "beta"),
     ({"scheme": "rk4"}, "scheme"), ({"n_steps": -1}, "n_steps"), ({"diffusion": -1.0}, "diffusion"),
     ({"record": "everything"}, "record")],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    args = {"potential": DoubleWell(), "x0": np.zeros(4), "beta": 1.0, "dt": 0.01, "n_steps": 3,
            "progress": False} | kwargs
    with pytest.raises(ValueError, match=match):
        langevin(**args)


def test_non_pd_hessian_and_nan_potential_raise():
    with pytest.raises(ValueError, match="positive definite"):
        Quadratic([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="symmetric"):
        Quadratic([[1.0, 0.5], [0.0, 1.0]])
    nan_pot = CallablePotential(lambda x: np.sqrt(x[:, 0]), dim=1, grad=lambda x: 0.5 / np.sqrt(x))
    with pytest.raises(ValueError, match="NaN/inf at x0 for particle 1"):
        langevin(nan_pot, np.array([1.0, -1.0, 2.0]), 1.0, 0.01, 2, progress=False)


def test_divergence_names_step_and_particle():
    # particle 2 starts at x = 6 on the quartic wall (L' = 840): dt 0.05 overshoots to -36 at step 1, and it
    # exceeds the bound 1e8 at step 3; the value is printed as a plain float, not np.float64(...)
    with pytest.raises(SimulationDiverged) as err:
        langevin(DoubleWell(), np.array([0.0, 0.5, 6.0]), 1.0, 0.05, 100, seed=0, progress=False)
    msg = str(err.value)
    assert re.search(r"at step 3 \(time 0\.15\): particle 2 has x\[0\] = -1\.\d+e\+11 \(1 particle", msg), msg
    assert "np.float64" not in msg, msg


def test_nan_mid_run_names_step_particle_and_coordinate():
    """The gradient turns NaN where x[1] > 0.55.  L = -x[1] drifts every particle up by dt = 0.1 per step
    (beta = 1e30: no noise); particle 2 starts highest (0), is at 0.6 after step 6, so step 7 gives NaN
    (particle 1, from -0.5, would get there only at step 12)."""

    def grad(x):
        g = np.zeros_like(x)
        g[:, 1] = np.where(x[:, 1] > 0.55, np.nan, -1.0)
        return g

    pot = CallablePotential(lambda x: -x[:, 1], 2, grad=grad)
    x0 = np.array([[0.0, -1.0], [0.0, -0.5], [0.0, 0.0]])
    with pytest.raises(SimulationDiverged,
                       match=r"at step 7 \(time 0\.7\): particle 2 has x\[1\] = nan \(1 particle\(s\) affected\)"):
        langevin(pot, x0, 1e30, 0.1, 50, progress=False)
    # the generator yields the six finite states before it raises
    states = []
    with pytest.raises(SimulationDiverged, match="step 7"):
        for st in langevin_steps(pot, x0, 1e30, 0.1, 50):
            states.append(st.x.copy())
    assert len(states) == 7  # steps 0..6
    assert_allclose(states[-1][:, 1], [-0.4, 0.1, 0.6], atol=1e-12)


    with pytest.raises(ValueError, match="record='histogram'"):
        langevin(Quadratic(1.0), np.zeros(10**6), 1.0, 0.1, 1000, every=1, progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"beta": "2"}, r"^beta must be a real number, got '2' \(str\)"),
    ({"beta": True}, r"^beta must be a real number, got True \(bool\)"),
    ({"dt": "0.01"}, r"^dt must be a real number, got '0.01' \(str\)"),
    ({"bound": np.nan}, r"^bound must be a finite number, got nan"),
    ({"diffusion": "2"}, r"^diffusion must be a real number, got '2' \(str\)"),
    ({"diffusion": np.array(-1.0)}, r"^diffusion must be > 0, got -1\.0"),
])
def test_scalars_are_refused_not_cast(kwargs, match):
    # the old check was float(value): the strings "2" and "0.01" ran as numbers
    args = {"potential": DoubleWell(), "x0": np.zeros(4), "beta": 1.0, "dt": 0.01, "n_steps": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        next(langevin_steps(**args))
    ok = langevin_steps(DoubleWell(), np.zeros(4), np.float32(2.0), np.float64(0.01), 2, diffusion=np.array(0.5))
    assert len(list(ok)) == 3


def test_kl_bits_is_the_info_kernel():
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(5), size=3), rng.dirichlet(np.ones(5))
    p[0, 1] = 0.0  # 0 log 0 = 0
    brute = [sum(a * np.log2(a / b) for a, b in zip(row, q, strict=True) if a > 0) for row in p]
    assert_allclose(kl_bits(p, q), brute, rtol=1e-13)
    assert np.array_equal(kl_bits(p, q), kl_rowwise(p, q))
