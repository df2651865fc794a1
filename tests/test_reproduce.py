"""ibtheory.reproduce: every section at the "tiny" size (files, finite numbers, verdict = rule), the report, the CLI,
the rules' helpers on known answers, and bad input."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from numpy.testing import assert_array_equal
from scipy.stats import spearmanr

from ibtheory.cli import main
from ibtheory.idx import write_idx
from ibtheory.reproduce import SECTIONS, run_all
from ibtheory.reproduce.depth import epochs_to_error
from ibtheory.reproduce.early_stopping import stop_index
from ibtheory.reproduce.plane import phase_verdict
from ibtheory.reproduce.report import Section

TOL = 0.05


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """All sections at the tiny size, once (MNIST on a 40-image IDX set written here)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("reproduce")
    mnist = base / "mnist"
    mnist.mkdir()
    rng = np.random.default_rng(0)
    labels = (np.arange(40) % 10).astype(np.uint8)
    images = (rng.random((40, 8, 8)) * 60).astype(np.uint8)
    images[np.arange(40), labels % 8, :] = 255  # a bright row per class: learnable
    write_idx(mnist / "t10k-images-idx3-ubyte.gz", images)
    write_idx(mnist / "t10k-labels-idx1-ubyte.gz", labels)
    out = base / "out"
    path, sections = run_all(out, "tiny", 0, mnist_dir=mnist, log=None)
    torch.set_num_threads(old)
    return out, path, {s.name: s for s in sections}


#: numbers that are NaN by their documented rule (no drift-to-diffusion transition within a short run)
MAY_BE_NAN = {"transition_epoch", "log10_turn_over_transition", "output_layer_transition_epoch"}


def _numbers_finite(sec: Section) -> None:
    for key, v in sec.numbers.items():
        if key in MAY_BE_NAN:
            continue
        vals = v if isinstance(v, list) else [v]
        for x in vals:
            if isinstance(x, (bool, str)):
                continue
            assert not math.isnan(float(x)), f"section {sec.name}: {key} is NaN"


def _kind(verdict: str) -> str:
    for k in ("holds only under", "holds", "does not hold here", "skipped"):
        if verdict.startswith(k):
            return k
    raise AssertionError(f"verdict {verdict!r} starts with no known kind")


def _phase_kind(flags) -> str:
    flags = np.asarray(flags, dtype=bool)
    if flags.size and 2 * flags.sum() >= flags.size:
        return "holds"
    return "holds only under" if flags.any() else "does not hold here"


def _choices_kind(shows: list[bool]) -> str:
    return "holds" if all(shows) else "holds only under" if any(shows) else "does not hold here"


def test_every_section_writes_its_files_and_finite_numbers(tiny_run):
    out, path, secs = tiny_run
    assert list(secs) == list(SECTIONS)
    for sec in secs.values():
        assert sec.figures, f"section {sec.name} has no figure"
        for f in sec.figures + sec.results:
            assert Path(f).is_file() and Path(f).stat().st_size > 0, f"section {sec.name}: {f} missing or empty"
        _numbers_finite(sec)
        assert np.isfinite(sec.seconds) and sec.seconds >= 0


def test_report_has_summary_table_and_every_section(tiny_run):
    out, path, secs = tiny_run
    text = path.read_text()
    assert path == out / "report.md"
    for sec in secs.values():
        assert f"## {sec.title}" in text, f"report lacks the section {sec.title!r}"
        assert f"| [{sec.name}]" in text, f"summary table lacks {sec.name}"
        assert sec.verdict in text
        for fig in sec.figures:
            assert f"]({Path(fig).name})" in text, f"report does not show {fig}"


def test_phase_verdicts_follow_their_rules(tiny_run):
    _, _, secs = tiny_run
    n = secs["plane"].numbers
    both = (np.array(n["fitting_bits"]) > TOL) & (np.array(n["compression_bits"]) > TOL)
    assert _kind(secs["plane"].verdict) == _phase_kind(both)
    g = secs["gradients"].numbers
    lag = np.array(g["log10_turn_over_transition"], dtype=float)
    aligned = np.isfinite(lag) & (np.abs(np.nan_to_num(lag, nan=np.inf)) <= 0.5) & np.array(g["compresses"])
    assert_array_equal(aligned, g["aligned"])
    assert _kind(secs["gradients"].verdict) == _phase_kind(aligned)


def test_sizes_depth_bound_verdicts_follow_their_rules(tiny_run):
    _, _, secs = tiny_run
    top = np.array(secs["sizes"].numbers["final_I_TY_last_hidden_bits"])
    want = ("holds" if np.all(np.diff(top) > 0.01) else "holds only under" if top[-1] - top[0] > 0.01
            else "does not hold here")
    assert _kind(secs["sizes"].verdict) == want
    d = secs["depth"].numbers
    e = np.array(d["epochs_to_threshold"], dtype=float)
    ranked = np.where(np.isfinite(e), e, 1e12)
    rho = spearmanr(ranked, d["depths"]).statistic if np.ptp(ranked) > 0 else 0.0
    assert math.isclose(rho, d["spearman_epochs_vs_depth"], abs_tol=1e-12), "Spearman rho recomputed differs"
    want = ("does not hold here" if not np.isfinite(e).any() or rho >= 0 else
            "holds" if rho <= -0.7 and e[-1] <= e[0] / 2 else "holds only under")
    assert _kind(secs["depth"].verdict) == want
    b = secs["bound"].numbers
    support = {}
    for est in ("binning", "noisy"):
        near = np.array(b[f"relevance_gap_{est}_bits"]) <= 0.05 + 1e-4  # numbers are rounded to 1e-4
        cons = (np.array(b[f"mismatch_{est}_bits"]) <= 0.05 + 1e-4) & np.array(b[f"beta_star_{est}_inside_range"])
        support[est] = "full" if (near & cons).all() else "partial" if near.all() or (near & cons).any() else "none"
        assert b[f"support_{est}"] == support[est], f"{est}: support does not follow the rule"
        # a proper encoder (binned, or the sampled noisy layer) cannot beat the IB curve
        assert np.all(np.array(b[f"relevance_gap_{est}_bits"]) >= -1e-6), est
        assert np.all(np.array(b[f"compression_gap_{est}_bits"]) >= -1e-6), est
        for key in ("relevance_gap", "compression_gap", "mismatch"):
            assert np.all(np.array(b[f"{key}_{est}_std_bits"]) >= 0), f"{key} {est}: spread over repeats"
        assert len(b[f"beta_star_{est}_geomean"]) == len(b["layers"])
    want = ("holds" if all(v == "full" for v in support.values()) else "does not hold here"
            if all(v == "none" for v in support.values()) else "holds only under")
    assert _kind(secs["bound"].verdict) == want
    for est, kind in support.items():  # the verdict names exactly the estimators that support the claim
        label = {"binning": "binning", "noisy": "noisy layer"}[est]
        if want == "holds only under":
            assert (f"{label} (" in secs["bound"].verdict) == (kind != "none"), secs["bound"].verdict
    assert b["sc_repeats"] == b["repeats"], "tiny fits every repeat"
    assert b["train_fractions"] == [0.05, 0.45, 0.85]
    for pct in (5, 45, 85):
        assert 0 <= b[f"final_I_TY_last_hidden_{pct}pct_bits"] <= b["I_XY_bits"] + 1e-9
        assert b[f"relevance_gap_last_hidden_{pct}pct_bits"] >= -1e-6
    assert [Path(f).name for f in secs["bound"].figures] == ["bound.png", "bound_gaps.png", "bound_sizes.png"]


def test_langevin_critiques_mnist_early_stopping_verdicts_follow_their_rules(tiny_run):
    _, _, secs = tiny_run
    n = secs["langevin"].numbers
    ok = n["relaxation_passes"] and n["kramers_passes"] and n["sgd_langevin_agree"]
    want = ("holds" if ok and n["both_compress"] else "holds only under" if ok else "does not hold here")
    assert _kind(secs["langevin"].verdict) == want
    out, _, _ = tiny_run
    with xr.open_dataset(out / "critiques_matrix.nc") as m:
        two = m["verdict"].sel(claim="two_phases").values
    assert _kind(secs["critiques"].verdict) == _choices_kind(list(two >= 1)), "critiques: verdict does not follow"
    for name in ("mnist",):
        num = secs[name].numbers
        shows = []
        for key in [k for k in num if "compression_bits" in k]:
            fit = np.array(num[key.replace("compression", "fitting")])
            shows.append(bool(np.any((np.array(num[key]) > TOL) & (fit > TOL))))
        assert _kind(secs[name].verdict) == _choices_kind(shows), f"{name}: verdict does not follow the rule"
    e = secs["early_stopping"].numbers
    d = e["ib_stop_beta20_test_accuracy"] - e["val_stop_test_accuracy"]
    assert math.isclose(d, e["delta_test_accuracy"], abs_tol=1e-12)
    want = ("does not hold here" if d < -0.01 else "holds" if e["ib_stop_beta20_epochs_used"] <=
            e["val_stop_epochs_used"] else "holds only under")
    assert _kind(secs["early_stopping"].verdict) == want


def test_mnist_is_skipped_without_a_folder(tmp_path):
    from ibtheory.reproduce import mnist

    sec = mnist.run(tmp_path, "tiny", 0)
    assert sec.verdict.startswith("skipped") and not sec.figures


def test_stop_index_known_answers():
    v = np.array([[5.0, 5.0], [4.0, 6.0], [3.0, 7.0], [3.5, 8.0], [3.2, 9.0], [2.0, 1.0]])
    best, stopped = stop_index(v, patience=2)
    assert_array_equal(best, [2, 0], err_msg="best snapshot before the stop")
    assert_array_equal(stopped, [4, 2], err_msg="stop after 2 snapshots without improvement")
    best, stopped = stop_index(v, patience=10)
    assert_array_equal(stopped, [5, 5], err_msg="never stopped -> last index")
    assert_array_equal(best, [5, 5])


def test_rule_helpers_known_answers():
    layers = np.array([1, 2, 3, 4])
    assert phase_verdict(np.array([1, 1, 0, 0], bool), layers) == "holds"
    assert phase_verdict(np.array([0, 0, 0, 1], bool), layers) == "holds only under: layers 4 (of 4)"
    assert phase_verdict(np.zeros(4, bool), layers) == "does not hold here"
    import xarray as xr

    run = xr.Dataset({"train_accuracy": (("epoch", "repeat"), [[0.5, 0.5], [0.8, 0.9], [0.95, 0.97]])},
                     coords={"epoch": [0, 10, 100]})
    assert epochs_to_error(run, 0.1) == 100.0
    assert epochs_to_error(run, 0.01) == math.inf


def test_cli_prints_the_report_path(tiny_run, tmp_path, capsys):
    assert main(["reproduce", "--size", "tiny", "--only", "early_stopping", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    m = re.search(r"report: (.+report\.md)", printed)
    assert m and Path(m.group(1)).is_file(), printed
    assert "Information-based early stopping" in Path(m.group(1)).read_text()


@pytest.mark.parametrize("kwargs, message", [
    ({"size": "huge"}, "size must be one of"),
    ({"only": ["plane", "nope"]}, "unknown section"),
])
def test_bad_input(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_all(tmp_path, **{"size": "tiny", **kwargs})


def test_cli_rejects_contradicting_sizes(tmp_path, capsys):
    assert main(["reproduce", "--quick", "--size", "full", "--out", str(tmp_path)]) == 2
    assert "contradicts" in capsys.readouterr().err


def test_section_rejects_an_unknown_verdict():
    with pytest.raises(ValueError, match="verdict"):
        Section("x", "X", "claim", {}, [], "maybe", "rule")


def test_experiment_script_entry_point(tiny_run, tmp_path, capsys):
    from ibtheory.reproduce.report import section_main

    assert section_main("early_stopping", ["--size", "tiny", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Information-based early stopping (tiny): ")
    assert (tmp_path / "report.md").is_file() and (tmp_path / "early_stopping.png").is_file()
    with pytest.raises(ValueError, match="name must be one of"):
        section_main("nope", [])


class _Trained(Exception):
    """Raised by the stand-in trainers below once they have recorded the device they were given."""


#: the name each training section calls to train (patched in its own module)
TRAINERS = {"plane": "paper_run", "gradients": "paper_run", "early_stopping": "paper_run",
            "critiques": "settings.paper_run", "sizes": "train", "depth": "train", "bound": "train"}


@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_every_training_section_trains_on_the_device_it_is_given(name, tmp_path, monkeypatch):
    import importlib

    module, _, attr = f"{name}.{TRAINERS[name]}".rpartition(".")
    mod = importlib.import_module(f"ibtheory.reproduce.{module.split('.')[-1]}")
    seen = []

    def trainer(*args, **kwargs):
        seen.append(kwargs.get("device"))
        raise _Trained

    monkeypatch.setattr(mod, attr, trainer)
    if name == "critiques":  # its rows run as runner tasks: every failed row is reported, after all were tried
        monkeypatch.setattr(mod, "measured_run", trainer)
        mod.setting_run.cache_clear()
    monkeypatch.setattr("ibtheory.nets.loop.check_device", lambda device, name="device": device)  # no GPU here
    monkeypatch.setattr("ibtheory.runner.builtin.check_device", lambda config: None)  # the rows' worker check
    with pytest.raises(_Trained if name != "critiques" else RuntimeError):
        run_all(tmp_path, "tiny", 0, only=[name], log=None, device="cuda:3")
    assert seen and set(seen) == {"cuda:3"}, f"section {name} trained on {seen}, expected the device of run_all"


@pytest.mark.parametrize(("device", "match"), [
    ("gpu", "device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"), ("cuda:x", "device must be"),
    ("cuda", "CUDA is not available"), ("cuda:0", "CUDA is not available"),
])
def test_a_bad_or_absent_device_is_refused_before_any_section_runs(device, match, tmp_path, monkeypatch):
    if match.startswith("CUDA") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    import ibtheory.reproduce.early_stopping as section

    monkeypatch.setattr(section, "run", lambda *a, **k: pytest.fail("a section ran"))
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=match):
        run_all(out, "tiny", 0, only=["early_stopping"], log=None, device=device)
    assert not out.exists()


@pytest.mark.parametrize(("device", "needle"), [
    ("gpu", "--device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"), ("cuda", "--device 'cuda' was asked for but "
                                                                               "CUDA is not available"),
])
def test_cli_device_errors_are_one_line_before_any_work(device, needle, tmp_path, capsys, monkeypatch):
    if "CUDA" in needle and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    import ibtheory.reproduce

    monkeypatch.setattr(ibtheory.reproduce, "run_all", lambda *a, **k: pytest.fail("the report ran"))
    out = tmp_path / "r"
    assert main(["reproduce", "--size", "tiny", "--out", str(out), "--device", device]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("ibtheory reproduce: error: ") and needle in err, err
    assert not out.exists(), "the output folder was created before the device was checked"


def test_section_script_takes_a_device(tmp_path, capsys):
    from ibtheory.reproduce.report import section_main

    with pytest.raises(ValueError, match="device must be"):
        section_main("early_stopping", ["--size", "tiny", "--out", str(tmp_path / "o"), "--device", "tpu"])
    assert not (tmp_path / "o").exists()


def test_the_critics_matrix_has_every_setting_and_claim_and_independent_values(tiny_run, monkeypatch):
    from ibtheory.reproduce import critiques, settings
    from ibtheory.reproduce.claims import CLAIMS

    out, _, secs = tiny_run
    with xr.open_dataset(out / "critiques_matrix.nc") as m:
        m = m.load()
    assert list(m["setting"].values) == [s.label for s in settings.SETTINGS]
    assert list(m["claim"].values) == list(CLAIMS)
    assert m["verdict"].dims == ("setting", "claim") and np.isin(m["verdict"].values, [-1, 0, 1, 2]).all()
    assert np.isnan(m["score"].values[m["verdict"].values == -1]).all()
    gauss = "linear, Gaussian closed form (noise 0.1)"
    assert int(m["verdict"].sel(setting=gauss, claim="near_bound")) == -1, "no I(T;Y) for the closed form"
    with xr.open_dataset(out / "critiques_sweep" / "sweep.nc") as sw:
        codes = sw["I_XT"].sel(setting="tanh, exact float codes").load()
        tanh = sw["I_XT"].sel(setting="tanh, 30 bins [-1, 1]").load()
    # Amjad & Geiger: the first tanh layer (10 units, 4096 distinct inputs) is injective: I(X;T) = H(X) = 12 bits
    first = codes.sel(layer=1).values
    assert np.allclose(first[np.isfinite(first)], 12.0, atol=1e-9)
    assert (tanh.sel(layer=1).values <= first + 1e-9).all(), "binning never exceeds the exact information"
    assert secs["critiques"].table.count("\n") == len(settings.SETTINGS) + 1
    # a rerun on the same folder resumes: every row is on disk, nothing trains
    monkeypatch.setattr(settings, "setting_run", lambda *a, **k: pytest.fail("a finished row ran again"))
    again = critiques.run(out, "tiny", 0)
    assert again.verdict == secs["critiques"].verdict
