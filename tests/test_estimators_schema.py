"""The run schema: the trainers write exactly what it declares, and every reader refuses a run that lacks a variable,
a dimension or the units it reads with a ValueError that names it."""

import doctest

import numpy as np
import pytest
import torch

from ibtheory import compare, nets, phases, tasks
from ibtheory.estimators import RUN_SCHEMA, schema
from ibtheory.ib import ib_curve
from ibtheory.nets.conv import train_conv
from ibtheory.plots.plane import plot_gradients, plot_learning, plot_plane


@pytest.fixture(scope="module")
def task():
    return tasks.gaussian_discretized(0.8, 16, 4)  # 16 patterns: every estimator (KDE too) costs milliseconds


@pytest.fixture(scope="module")
def run(task):
    return nets.train(task, hidden=(3,), repeats=2, epochs=3, snapshots=3, n_bins=4, keep_activations=True,
                      estimators=("binning", "kde", "ensemble"), progress=False)


@pytest.fixture(scope="module")
def curve(task):
    return ib_curve(task["p_xy"].values, betas=np.geomspace(0.5, 50.0, 6))


def _assert_written_through_the_schema(ds):
    for name, var in ds.data_vars.items():
        assert name in RUN_SCHEMA, f"{name} is written but not declared"
        spec = RUN_SCHEMA[name]
        assert var.dims == spec.dims, f"{name}: dims {var.dims}, declared {spec.dims}"
        assert var.attrs == spec.attrs, f"{name}: attrs {var.attrs}, declared {spec.attrs}"


def test_train_writes_what_the_schema_declares(run):
    _assert_written_through_the_schema(run)
    assert {"I_XT_kde_lower", "I_TY_ensemble", "activations", "checkpoint_opt_v"} <= set(run.data_vars)


def test_train_conv_writes_what_the_schema_declares(task):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        image = tasks.from_joint(task["p_xy"].values)  # one-hot inputs: 16 pixels, a 4x4 image
        ds = train_conv(image, channels=(2,), kernel=3, hidden=(3,), repeats=2, epochs=2, snapshots=2,
                        batch_size=8, progress=False)
    finally:
        torch.set_num_threads(before)
    _assert_written_through_the_schema(ds)
    assert {"layer_kind", "I_XT_ensemble", "n_states", "grad_snr"} <= set(ds.data_vars)


@pytest.mark.parametrize("reader, drop, match", [
    (lambda r, c: compare.against_bound(r, c), "p_xy", r"run lacks the variable\(s\) \['p_xy'\] \('p_xy': the "
     r"task's exact joint\)"),
    (lambda r, c: plot_plane(r, "kde_lower"), "I_TY_kde_lower",
     r"run lacks the variable\(s\) \['I_TY_kde_lower'\] \('I_TY_kde_lower': recorded by "
     r"nets.train\(estimators=\['kde'\]\)\)"),
    (lambda r, c: plot_gradients(r), "grad_std_rel", r"lacks the variable\(s\) \['grad_std_rel'\] \('grad_std_rel': "
     "grad_std_norm / weight_norm"),
    (lambda r, c: plot_learning(r), "test_accuracy", r"\['test_accuracy'\] \('test_accuracy': accuracy on the test"),
    (lambda r, c: phases.detect_phases(r, window=1), "grad_mean_norm", r"\['grad_mean_norm'\] \('grad_mean_norm': "),
    (lambda r, c: phases.compression_turn(r, "I_XT_ensemble", window=1), "I_XT_ensemble",
     r"\['I_XT_ensemble'\] \('I_XT_ensemble': recorded by nets.train\(estimators=\['ensemble'\]\)\)"),
])
def test_readers_name_the_missing_variable_and_what_records_it(run, curve, reader, drop, match):
    with pytest.raises(ValueError, match=match):
        reader(run.drop_vars(drop), curve)


@pytest.mark.parametrize("reader", [
    lambda r, c: compare.against_bound(r, c),
    lambda r, c: plot_plane(r),
    lambda r, c: phases.compression_turn(r, window=1),
])
def test_readers_refuse_information_in_other_units(run, curve, reader):
    nats = run.copy()
    nats["I_XT"] = nats["I_XT"] * np.log(2.0)
    nats["I_XT"].attrs["units"] = "nats"
    with pytest.raises(ValueError, match=r"run\['I_XT'\] is in 'nats' but a run holds it in 'bits'"):
        reader(nats, curve)


@pytest.mark.parametrize("reader", [
    lambda r, c: compare.against_bound(r, c),
    lambda r, c: plot_plane(r, "ensemble"),
    lambda r, c: phases.compression_turn(r, window=1),
])
def test_readers_refuse_a_run_without_its_epoch_dimension(run, curve, reader):
    """``run.isel(epoch=-1)`` drops the epoch dimension: once a numpy IndexError or an xarray error deep inside."""
    with pytest.raises(ValueError, match=r"run\['I_XT(_ensemble)?'\] has dims \('layer',?(, 'repeat')?\) but needs "
                                         r"\('epoch', 'layer'\) \(it lacks \['epoch'\]\)"):
        reader(run.isel(epoch=-1), curve)


def test_readers_refuse_what_is_not_a_dataset(run, curve):
    for call in (lambda: compare.against_bound(run.to_dataframe, curve), lambda: plot_plane(None),
                 lambda: phases.snr({"grad_mean_norm": 1})):
        with pytest.raises(ValueError, match="run must be an xarray Dataset from ibtheory.nets.train, got "):
            call()


def test_unknown_names_and_examples():
    with pytest.raises(KeyError, match="'I_XT_nope' is not a run variable"):
        RUN_SCHEMA["I_XT_nope"]
    result = doctest.testmod(schema)
    assert result.failed == 0 and result.attempted > 0, result
