"""Relaxation: spectral gap of the discretised generator (sparse eigensolver) against closed forms and against
the decay rate measured in simulations; Kramers' rate against exact and simulated mean first-passage times."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from ibtheory.dynamics import (
    CallablePotential,
    DoubleWell,
    Quadratic,
    SimulationDiverged,
    first_passage_times,
    fit_decay_rate,
    kramers_rate,
    langevin,
    mfpt_estimate,
    mfpt_exact,
    relaxation_times,
    spectral_gap,
    spectrum,
)


def test_ou_spectrum_is_n_times_k():
    s = spectrum(Quadratic(1.5), beta=2.0, grid=np.linspace(-5, 5, 801), k=4)
    assert_allclose(s.eigenvalues, 1.5 * np.arange(4), atol=2e-3, err_msg="OU eigenvalues n k")
    # phi_1 of OU is proportional to x (Hermite polynomial), normalised E[phi^2] = 1
    x = s.axes[0]
    bulk = np.abs(x) < 2.0  # 3.5 standard deviations; the far tails carry no Gibbs weight
    assert_allclose(s.eigenfunctions[1][bulk], x[bulk] * np.sqrt(2.0 * 1.5), atol=5e-3)


def test_2d_separable_spectrum_is_sums_and_grid_converges_second_order():
    dw2 = DoubleWell(1.0, dim=2, stiffness=3.0)
    s2 = spectrum(dw2, 2.0, (np.linspace(-2.6, 2.6, 131), np.linspace(-2.5, 2.5, 101)), k=3)
    g1 = spectral_gap(DoubleWell(1.0), 2.0, np.linspace(-2.6, 2.6, 131))
    assert_allclose(s2.gap, g1, rtol=1e-6)
    assert_allclose(s2.eigenvalues[2], 3.0, rtol=2e-3)  # the harmonic direction's first mode
    gaps = [spectral_gap(DoubleWell(1.0), 2.0, np.linspace(-3, 3, n)) for n in (201, 401, 801)]
    ratio = (gaps[0] - gaps[1]) / (gaps[1] - gaps[2])
    assert 3.0 < ratio < 5.0, f"halving h should cut the error 4x (second order), got {ratio:.2f}"


def test_measured_decay_rate_matches_spectral_gap_within_5_percent():
    """All particles start at x = -1 (left well); E[x_t] -> 0 as exp(-lambda_1 t) (the even modes do not enter
    an odd observable's projection at late times; lambda_3 / lambda_1 > 30 here)."""
    dw, beta = DoubleWell(1.0), 2.0
    gap = spectral_gap(dw, beta, np.linspace(-3, 3, 1201))
    ds = langevin(dw, np.full(20_000, -1.0), beta, 0.01, 1000, scheme="leimkuhler-matthews", record="moments",
                  every=10, seed=5, progress=False)
    rate = fit_decay_rate(ds.time.values, ds["position_mean"].sel(dim=0).values, 1.0, 10.0)
    assert abs(rate / gap - 1) < 0.05, f"decay rate {rate:.4f} vs spectral gap {gap:.4f} (tol 5 %)"


def test_relaxation_time_grows_exponentially_with_barrier():
    """1 / lambda_1 ~ 1 / (2 k_Kramers) = pi / (sqrt(32) h) exp(beta h): ln(h / lambda_1) is linear in beta h with
    slope 1 (tolerance 0.05 for the O(1/(beta h)) corrections), and lambda_1 / (2 k) is within 15 % below 1."""
    barriers = [1.0, 2.0, 3.0, 4.0]
    ds = relaxation_times(lambda h: DoubleWell(h), barriers, 2.0, np.linspace(-2.6, 2.6, 801))
    slope = np.polyfit(ds["barrier_over_temperature"], np.log(ds["relaxation_time"] * ds["barrier"]), 1)[0]
    assert abs(slope - 1) < 0.05, f"ln(h / lambda_1) vs beta h slope {slope:.3f} (Arrhenius/Kramers: 1)"
    ratio = ds["gap"].values / [2 * kramers_rate(DoubleWell(h), 2.0, -1.0, 0.0) for h in barriers]
    assert np.all((ratio > 0.85) & (ratio < 1.0)), f"lambda_1 / 2k = {ratio}"


def test_mfpt_exact_known_answer_free_diffusion():
    flat = CallablePotential(lambda x: 0.0 * x[:, 0], 1, grad=lambda x: 0.0 * x)
    # reflecting at 0, start at 0, absorbing at b: tau = beta b^2 / 2
    assert_allclose(mfpt_exact(flat, 3.0, 0.0, 2.0, lower=-1e-12), 3.0 * 4 / 2, rtol=1e-6)


@pytest.mark.parametrize("beta_h", [4.0, 5.0, 6.0])
def test_kramers_rate_within_15_percent_of_exact_mfpt(beta_h):
    dw = DoubleWell(2.0)
    beta = beta_h / 2.0
    exact = mfpt_exact(dw, beta, -1.0, 1.0)
    kramers = 1.0 / kramers_rate(dw, beta, -1.0, 0.0)
    assert abs(kramers - exact) / kramers < 0.15, f"beta h={beta_h}: Kramers {kramers:.2f} vs exact {exact:.2f}"


@pytest.mark.slow
def test_simulated_mfpt_within_15_percent_of_kramers_at_beta_h_5():
    """Issue 6: simulated MFPT within 15 % of Kramers' prediction for barrier / temperature >= 4.

    beta h = 5 (h = 1, beta = 5), from -1 to +1: Kramers 164.85, exact 182.42 (10.7 % above Kramers; at beta h = 4
    Kramers' law itself is 14 % off, which leaves no room for the simulation's error, so 5 is tested).
    12,000 particles, Leimkuhler-Matthews dt = 0.005, censored at 2 exact MFPTs (exponential-law MLE).
    How the statistical error is handled, without widening the 15 % bound:
    1. precision: the run must have 3 s.e. <= 3 % of the estimate (>= 10^4 observed passages), so a true MFPT
       more than ~3 % outside the bound could not pass by chance;
    2. the 15 % bound is asserted on the estimate itself, no slack;
    3. the estimate must be within 3 s.e. of the exact MFPT (the scheme's O(dt) bias, measured +0.7 +- 0.6 % at
       dt 0.005, +2.2 % at 0.01, +3.3 % at 0.02, is inside that).
    """
    dw, beta = DoubleWell(1.0), 5.0
    exact = mfpt_exact(dw, beta, -1.0, 1.0)
    kramers = 1.0 / kramers_rate(dw, beta, -1.0, 0.0)
    dt = 0.005
    n_steps = int(2 * exact / dt)
    times = first_passage_times(dw, beta, -1.0, 1.0, dt, 12_000, n_steps, seed=3, noise="torch")
    est = mfpt_estimate(times, t_max=n_steps * dt)
    sim, se = float(est["mfpt"]), float(est["stderr"])
    assert 3 * se <= 0.03 * sim, f"precision: 3 s.e. = {3 * se:.2f} must be <= 3 % of the estimate {sim:.2f}"
    rel = abs(sim - kramers) / kramers
    assert rel <= 0.15, f"simulated MFPT {sim:.2f} +- {se:.2f} vs Kramers {kramers:.2f}: {rel:.1%} (tol 15 %)"
    assert abs(sim - exact) <= 3 * se, (f"simulated MFPT {sim:.2f} vs exact {exact:.2f}: "
                                        f"{abs(sim - exact) / se:.1f} s.e. (tol 3 s.e. = {3 * se:.2f})")


def test_first_passage_divergence_names_step_and_particle():
    """A gradient that turns NaN beyond x = 0.55 (reached, with negligible noise, by the drift of L = -x from
    x0 = 0 after 6 steps of dt = 0.1 at x = 0.6; the NaN gradient there gives x = NaN at step 7)."""
    pot = CallablePotential(lambda x: -x[:, 0], 1, grad=lambda x: np.where(x > 0.55, np.nan, -1.0))
    with pytest.raises(SimulationDiverged, match=r"at step 7 \(time 0\.7\): particle 0 has x = nan"):
        first_passage_times(pot, 1e30, 0.0, 2.0, 0.1, 3, 100, seed=0)
    with pytest.raises(ValueError, match="noise"):
        first_passage_times(DoubleWell(), 1.0, -1.0, 1.0, 0.01, 10, 10, noise="cuda")


def test_bad_input():
    with pytest.raises(ValueError, match="beta"):
        spectral_gap(DoubleWell(), -1.0, np.linspace(-3, 3, 101))
    with pytest.raises(ValueError, match="equally spaced"):
        spectral_gap(DoubleWell(), 1.0, np.array([-3.0, -1.0, 0.0, 3.0]))
    with pytest.raises(ValueError, match="minimum"):
        kramers_rate(DoubleWell(), 1.0, 0.0, -1.0)
    with pytest.raises(ValueError, match="t_max"):
        mfpt_estimate(np.array([1.0, np.inf]))


@pytest.mark.parametrize("call, match", [
    (lambda: first_passage_times(DoubleWell(), 1.0, -1.0, 1.0, "0.01", 10, 10), r"^dt must be a real number"),
    (lambda: first_passage_times(DoubleWell(), 1.0, -1.0, 1.0, 0.01, 2.5, 10), r"^n_particles must be an integer"),
    (lambda: first_passage_times(DoubleWell(), 1.0, -1.0, 1.0, 0.01, 10, -1), r"^max_steps must be an integer >= 0"),
    (lambda: first_passage_times(DoubleWell(), "1", -1.0, 1.0, 0.01, 10, 10), r"^beta must be a real number"),
    (lambda: relaxation_times(DoubleWell, [], -1.0, np.linspace(-3, 3, 31)), r"^beta must be > 0, got -1\.0"),
    (lambda: kramers_rate(DoubleWell(), np.inf, -1.0, 0.0), r"^beta must be a finite number, got inf"),
])
def test_scalar_arguments_are_checked_naming_them(call, match):
    # one validator (ibtheory._validate.real): strings are refused, not cast; 2.5 particles are not truncated
    with pytest.raises(ValueError, match=match):
        call()
