"""The claim rules of the critics' matrix on hand-built runs whose answers are computed here from the curves' closed
forms (turn, end and duration of each layer's compression, Spearman rho by its rank formula, least squares by
np.polyfit, a bootstrap written as a loop)."""

import numpy as np
import pytest
import xarray as xr
from numpy.testing import assert_allclose
from scipy.special import expit

from ibtheory.reproduce import claims
from ibtheory.reproduce.claims import CLAIMS, HOLDS, NA, NO, PARTLY, claim_table

pytestmark = pytest.mark.filterwarnings("error")

EPOCHS = np.concatenate([[0], np.unique(np.round(np.geomspace(1, 10_000, 121)).astype(int))])
FINAL = float(EPOCHS[-1])
TOL = 0.05
OFFSETS = np.array([-0.04, 0.0, 0.04])  # per repeat, constant in time: the repeat mean is the curve itself


def snap(t):
    """The first snapshot epoch >= t."""
    return EPOCHS[np.searchsorted(EPOCHS, t)].astype(float)


def curve(turn, stop, fit=1.0, comp=0.5, base=1.0):
    """I(X;T) over (epoch, *shape): rises by ``fit`` (linear in log10(1 + e)) to base + fit at the snapshot
    ``turn``, then falls by ``comp`` linearly in log10 e until ``stop``, flat afterwards."""
    turn, stop, fit, comp = np.broadcast_arrays(*map(np.asarray, (turn, stop, fit, comp)))
    e = EPOCHS.reshape(-1, *[1] * turn.ndim).astype(float)
    rise = base + fit * np.clip(np.log10(1 + e) / np.log10(1 + turn), 0, 1)
    frac = np.clip(np.log10(np.maximum(e, 1) / turn) / np.log10(stop / turn), 0, 1)
    return np.where(e <= turn, rise, base + fit - comp * frac)


def end_epoch(turn, stop):
    """First snapshot after the turn where 90 % of the (log-linear) fall is done: e >= turn (stop/turn)^0.9."""
    return snap(np.asarray(turn) * (np.asarray(stop) / np.asarray(turn)) ** 0.9)


def make_run(ixt, ity=None, log_snr=None):
    """Run Dataset from hidden-layer I(X;T) (epoch, layer[, repeat]); a rising softmax output layer is appended.
    Without a repeat axis, the repeats differ by OFFSETS.  ``log_snr`` (epoch, hidden layer): gradient SNR."""
    ixt = np.asarray(ixt, float)
    if ixt.ndim == 2:
        ixt = ixt[:, :, None] + OFFSETS
    out = (0.5 + np.log10(1 + EPOCHS) / 8)[:, None, None] * np.ones((1, 1, ixt.shape[2]))
    ixt = np.concatenate([ixt, out], axis=1)
    n_l, n_r = ixt.shape[1], ixt.shape[2]
    dims = ("epoch", "layer", "repeat")
    ds = xr.Dataset({"I_XT": (dims, ixt, {"units": "bits"})},
                    coords={"epoch": EPOCHS, "layer": np.arange(1, n_l + 1), "repeat": np.arange(n_r)})
    if ity is not None:
        ity = np.concatenate([np.asarray(ity, float), np.full((EPOCHS.size, 1), 0.9)], axis=1)
        ds["I_TY"] = (dims, ity[:, :, None] + OFFSETS[:n_r], {"units": "bits"})
    if log_snr is not None:
        log_snr = np.concatenate([log_snr, np.zeros((EPOCHS.size, 1))], axis=1)
        scale = np.linspace(0.5, 1.5, n_r)  # mean 1 over repeats
        mean = 10 ** log_snr[:, :, None] * scale
        mean[0] = np.nan
        ds["grad_mean_norm"] = (dims, mean)
        ds["grad_std_norm"] = (dims, np.ones_like(mean))
    return ds


def row(table, claim):
    r = table.sel(claim=claim)
    return int(r["verdict"]), float(r["score"]), str(r["detail"].values)


TURNS = snap([20, 50, 100, 200])


def share_code(flags):
    k, n = int(np.sum(flags)), len(flags)
    return HOLDS if 2 * k >= n else PARTLY if k else NO


# -- the table itself -------------------------------------------------------------------------------------------


def test_table_layout_and_words():
    table = claim_table(make_run(curve(TURNS, TURNS * 20)), window=1)
    assert table["claim"].values.tolist() == list(CLAIMS)
    assert table["verdict"].dtype == np.int8 and table["score"].dtype == np.float64
    assert table["detail"].dtype.kind == "U" and all(len(d) > 5 for d in table["detail"].values)
    na = table["verdict"].values == NA
    assert_allclose(np.isnan(table["score"].values), na)  # NaN exactly where n/a
    assert set(table.sel(claim=["gradients_snr_one", "gradients_snr_slope", "near_bound"])["verdict"].values) == {NA}
    assert set(claims.CLAIM_LABELS) == set(CLAIMS) == set(claims.RULES)
    assert [claims.verdict_word(c) for c in (NA, NO, PARTLY, HOLDS)] == ["n/a", "does not hold", "partly", "holds"]
    assert claims.verdict_word(np.int8(2)) == "holds"


# -- two phases -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fit, comp", [
    ([1.0, 1.0, 0.02, 1.0], [0.5, 0.3, 0.5, 0.01]),  # 2 of 4: holds
    ([1.0, 0.0, 0.0, 0.03], [0.5, 0.5, 0.5, 0.5]),  # 1 of 4: partly
    ([1.0, 1.0, 1.0, 1.0], [0.01, 0.02, 0.0, 0.04]),  # none compresses: no
])
def test_two_phases(fit, comp):
    fit, comp = np.array(fit), np.array(comp)
    code, score, detail = row(claim_table(make_run(curve(TURNS, TURNS * 20, fit, comp)), window=1), "two_phases")
    both = (fit > TOL) & (comp > TOL)
    assert code == share_code(both)
    assert score == pytest.approx(both.mean())
    assert f"{both.sum()} of 4" in detail


# -- gradients --------------------------------------------------------------------------------------------------

WIDTH = 0.6  # decades; SNR = 1 where the sigmoid is 3/4: WIDTH ln 3 = 0.66 decades after the steepest point
CENTRES = np.array([10.0, 30.0, 100.0, 300.0])


def gradient_run(turns, comp=0.5):
    z = (np.log10(np.maximum(EPOCHS, 1))[:, None] - np.log10(CENTRES)) / WIDTH
    log_snr = 1.5 - 2 * expit(z)
    return make_run(curve(turns, np.asarray(turns) * 20, 1.0, comp), log_snr=log_snr)


def test_gradients_each_rule_its_own_transition():
    crossing = CENTRES * 10 ** (WIDTH * np.log(3))
    turns = snap(np.r_[CENTRES[:3], crossing[3]])  # layers 1-3 turn at the steepest fall, layer 4 at SNR = 1
    table = claim_table(gradient_run(turns), window=1)
    one = snap(crossing + 1e-9)  # first snapshot with SNR < 1
    for claim, transition in (("gradients_snr_one", one), ("gradients_snr_slope", CENTRES)):
        aligned = np.abs(np.log10(turns / transition)) <= 0.5
        code, score, detail = row(table, claim)
        assert code == share_code(aligned), claim
        assert score == pytest.approx(aligned.mean()), claim
    assert row(table, "gradients_snr_slope")[:2] == (HOLDS, 0.75)
    assert row(table, "gradients_snr_one")[:2] == (PARTLY, 0.25)


def test_gradients_need_compression():
    table = claim_table(gradient_run(snap(CENTRES), comp=0.01), window=1)
    assert row(table, "gradients_snr_slope")[:2] == (NO, 0.0)
    assert row(table, "gradients_snr_one")[:2] == (NO, 0.0)


# -- near the bound ---------------------------------------------------------------------------------------------


def ib_curve(x):
    return 1.0 - 2.0 ** (-np.asarray(x))


@pytest.mark.parametrize("gaps, code", [
    ([0.01, 0.2, -0.03, 0.04], PARTLY),
    ([0.01, 0.0, -0.03, 0.04], HOLDS),
    ([0.1, 0.2, 0.3, 0.06], NO),
])
def test_near_bound(gaps, code):
    fit, comp = np.array([1.0, 0.8, 0.6, 0.4]), np.array([0.5, 0.3, 0.2, 0.1])
    final_x = 1.0 + fit - comp
    ity = np.ones((EPOCHS.size, 1)) * (ib_curve(final_x) - np.array(gaps))
    ity[:10] = 0.1  # only the final snapshot counts
    table = claim_table(make_run(curve(TURNS, TURNS * 20, fit, comp), ity=ity), ib_curve, window=1)
    got, score, detail = row(table, "near_bound")
    assert got == code
    assert score == pytest.approx(max(gaps), abs=1e-12)
    assert f"{sum(g <= TOL for g in gaps)} of 4" in detail


def test_near_bound_not_applicable():
    run = make_run(curve(TURNS, TURNS * 20), ity=np.full((EPOCHS.size, 4), 0.5))
    assert row(claim_table(run, window=1), "near_bound")[0] == NA
    assert row(claim_table(run.drop_vars("I_TY"), ib_curve, window=1), "near_bound")[0] == NA


# -- deeper layers compress faster ------------------------------------------------------------------------------


def spearman_by_ranks(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    n = len(a)
    return 1 - 6 * np.sum((ra - rb) ** 2) / (n * (n * n - 1))


@pytest.mark.parametrize("target, code", [
    ([0.1, 0.2, 0.3, 0.4], HOLDS),  # rho = 1
    ([0.4, 0.3, 0.2, 0.1], NO),  # rho = -1
    ([0.3, 0.1, 0.2, 0.4], PARTLY),  # rho = 0.4
    ([0.2, 0.1, 0.4, 0.3], HOLDS),  # rho = 0.6
])
def test_deeper_compress_faster(target, code):
    decades = np.log10(FINAL / TURNS)
    comp = np.array(target) * decades  # rate = comp / log10(final / turn)
    got, score, detail = row(claim_table(make_run(curve(TURNS, TURNS * 20, 1.0, comp)), window=1),
                             "deeper_compress_faster")
    rho = spearman_by_ranks(np.arange(4), comp / decades)
    assert got == code
    assert score == pytest.approx(rho)
    assert "rates [" + ", ".join(f"{r:.3g}" for r in target) + "] bits/decade" in detail


def test_deeper_compress_faster_skips_layers_that_do_not_compress():
    decades = np.log10(FINAL / TURNS)
    comp = np.array([0.3, 0.01, 0.1, 0.2]) * decades  # layer 2 compresses by 0.023 bits < tol
    code, score, _ = row(claim_table(make_run(curve(TURNS, TURNS * 20, 1.0, comp)), window=1),
                         "deeper_compress_faster")
    assert code == NO and score == pytest.approx(spearman_by_ranks([1, 3, 4], [0.3, 0.1, 0.2]))
    comp[2:] = 0.0
    assert row(claim_table(make_run(curve(TURNS, TURNS * 20, 1.0, comp)), window=1),
               "deeper_compress_faster")[0] == NA


def test_deeper_compress_faster_smoothed():
    decades = np.log10(FINAL / TURNS)
    run = make_run(curve(TURNS, TURNS * 20, 1.0, np.array([0.1, 0.2, 0.3, 0.4]) * decades))
    assert row(claim_table(run), "deeper_compress_faster")[:2] == (HOLDS, pytest.approx(1.0))


# -- shorter compression after a compressed layer ---------------------------------------------------------------


@pytest.mark.parametrize("span, code", [
    ([2.0, 1.5, 1.2, 0.8], HOLDS),
    ([2.0, 1.0, 1.5, 0.5], PARTLY),
    ([0.5, 1.0, 1.5, 1.7], NO),
])
def test_shorter_after_compressed(span, code):
    stop = TURNS * 10 ** np.array(span)
    got, score, detail = row(claim_table(make_run(curve(TURNS, stop)), window=1), "shorter_after_compressed")
    d = np.log10(end_epoch(TURNS, stop) / TURNS)
    agree = d[1:] < d[:-1]
    assert got == code
    assert score == pytest.approx(agree.mean())
    assert f"{agree.sum()} of 3" in detail
    assert "durations [" + ", ".join(f"{v:.2f}" for v in d) + "] decades" in detail


def test_shorter_after_compressed_needs_a_consecutive_pair():
    stop = TURNS * 10 ** np.array([2.0, 1.5, 1.2, 0.8])
    comp = np.array([0.5, 0.01, 0.5, 0.01])
    assert row(claim_table(make_run(curve(TURNS, stop, 1.0, comp)), window=1),
               "shorter_after_compressed")[:2] == (NA, pytest.approx(np.nan, nan_ok=True))
    comp = np.array([0.5, 0.01, 0.5, 0.5])  # one pair: layers 3, 4 (D_4 < D_3)
    assert row(claim_table(make_run(curve(TURNS, stop, 1.0, comp)), window=1),
               "shorter_after_compressed")[:2] == (HOLDS, 1.0)


# -- compression time super-linear in the compressed information ------------------------------------------------


def superlinear_run(d_i, dt, turn=20.0):
    """(layer, repeat) compressions of d_i bits that reach 90 % about dt epochs after the turn."""
    turn = np.full(np.shape(d_i), snap(turn))
    stop = turn * ((turn + dt) / turn) ** (1 / 0.9)
    return make_run(curve(turn, stop, 1.0, d_i)), end_epoch(turn, stop) - turn


def bootstrap_q05(x, y, seed=1, n=2000):
    rng = np.random.default_rng(seed)
    slopes = []
    for _ in range(n):
        i = rng.integers(0, len(x), len(x))
        if np.ptp(x[i]) > 0:
            slopes.append(np.polyfit(x[i], y[i], 1)[0])
    return np.quantile(slopes, 0.05)


def test_time_superlinear_holds():
    d_i = np.geomspace(0.06, 1.0, 12).reshape(4, 3)
    run, dt = superlinear_run(d_i, 2000 * d_i**2)
    code, score, _ = row(claim_table(run, window=1), "time_superlinear")
    b = np.polyfit(np.log10(d_i.ravel()), np.log10(dt.ravel()), 1)[0]
    assert b > 1.5 and bootstrap_q05(np.log10(d_i.ravel()), np.log10(dt.ravel())) > 1
    assert code == HOLDS
    assert score == pytest.approx(b, rel=1e-9)


def test_time_superlinear_partly_and_no():
    d_i = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9], [1.0, 1.1, 1.2]])
    noise = 10 ** np.array([[0.6, -0.6, 0.5], [-0.5, 0.6, -0.6], [0.5, -0.5, 0.6], [-0.6, 0.5, -0.5]])
    run, dt = superlinear_run(d_i, 100 * d_i**1.5 * noise)
    x, y = np.log10(d_i.ravel()), np.log10(dt.ravel())
    b = np.polyfit(x, y, 1)[0]
    assert b > 1 and bootstrap_q05(x, y) < 0.8  # the data are what this case means
    code, score, _ = row(claim_table(run, window=1), "time_superlinear")
    assert code == PARTLY and score == pytest.approx(b, rel=1e-9)

    run, dt = superlinear_run(d_i, 300 * d_i**0.5)
    code, score, _ = row(claim_table(run, window=1), "time_superlinear")
    assert code == NO
    assert score == pytest.approx(np.polyfit(np.log10(d_i.ravel()), np.log10(dt.ravel()), 1)[0], rel=1e-9)


def test_time_superlinear_without_repeats_and_too_few_points():
    d_i = np.array([0.1, 0.3, 0.6, 1.0])
    run, dt = superlinear_run(d_i[:, None], 1000 * d_i[:, None] ** 2)  # one repeat
    run = run.isel(repeat=0, drop=True)
    code, score, _ = row(claim_table(run, window=1), "time_superlinear")
    assert code == HOLDS and score == pytest.approx(np.polyfit(np.log10(d_i), np.log10(dt.ravel()), 1)[0])
    d_i = np.array([[0.3, 0.01], [0.6, 0.02], [0.0, 0.04], [0.0, 0.0]])  # two points above tol
    run, _ = superlinear_run(d_i, 100.0)
    assert row(claim_table(run, window=1), "time_superlinear")[0] == NA


# -- bad input --------------------------------------------------------------------------------------------------


def test_bad_input():
    run = make_run(curve(TURNS, TURNS * 20))
    with pytest.raises(ValueError, match="I_XT"):
        claim_table(run.drop_vars("I_XT"))
    with pytest.raises(ValueError, match="bound"):
        claim_table(run, bound=0.5)
    with pytest.raises(ValueError, match="bound"):
        claim_table(run.assign(I_TY=run["I_XT"] * 0.5), bound=lambda x: 1.0)  # not vectorised
    with pytest.raises(ValueError, match="window"):
        claim_table(run, window=0)
    with pytest.raises(ValueError, match="tol"):
        claim_table(run, tol=-0.1)
    with pytest.raises(ValueError, match="two layers"):
        claim_table(run.isel(layer=[0]))
    with pytest.raises(ValueError, match="epoch"):
        claim_table(run.isel(epoch=[0, 2, 1, 3]))
    with pytest.raises(ValueError, match="Dataset"):
        claim_table(run["I_XT"])
    with pytest.raises(ValueError, match="code"):
        claims.verdict_word(3)
    with pytest.raises(ValueError, match="code"):
        claims.verdict_word("holds")
