"""Every layer estimator refuses non-finite activations instead of measuring them as padding (a diverged network
once read as 0 bits of I(X;T)): NaN is allowed only as whole trailing padding units of a layer."""

import numpy as np
import pytest

from ibtheory.estimators import bin_indices, binned_codes, binned_information, ensemble_information, kde_information

POISONS = [("all_nan_layer", r"activations at \[1\] are NaN for every unit and pattern: the network probably diverged"),
           ("nan_before_real_unit", r"activations at \[0\] have a NaN unit before a real unit"),
           ("inf", "activations contain infinite values")]

ESTIMATORS = {
    "binning": binned_information,
    "bin_indices": lambda a, *args: bin_indices(a),
    "binned_codes": lambda a, *args: binned_codes(a),
    "ensemble": ensemble_information,
    "kde": kde_information,
}


def _poisoned(acts: np.ndarray, kind: str) -> np.ndarray:
    """(R, n_x, units) activations with a trailing NaN padding unit, made invalid in one of three ways."""
    a = np.concatenate([acts, np.full(acts.shape[:-1] + (1,), np.nan)], axis=-1)
    if kind == "all_nan_layer":  # a diverged network: every unit of repeat 1 is NaN (nothing left to call padding)
        a[1] = np.nan
    elif kind == "nan_before_real_unit":  # a whole NaN unit followed by real units is not padding
        a[0, :, 0] = np.nan
    else:  # -inf in a real unit, beside legitimate padding
        a[2, 5, 1] = -np.inf
    return a


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize(("kind", "match"), POISONS)
def test_non_finite_activations_are_refused_not_taken_for_padding(name, kind, match):
    acts = np.random.default_rng(5).uniform(-1, 1, size=(3, 40, 2))
    with pytest.raises(ValueError, match=match):
        ESTIMATORS[name](_poisoned(acts, kind), np.full(40, 1 / 40), np.eye(2)[np.arange(40) % 2])


def test_padding_alone_is_accepted_and_one_network_names_no_index():
    acts = np.random.default_rng(6).uniform(-1, 1, size=(3, 40, 2))
    padded = np.concatenate([acts, np.full((3, 40, 1), np.nan)], axis=-1)
    p_x, p_y_x = np.full(40, 1 / 40), np.eye(2)[np.arange(40) % 2]
    np.testing.assert_allclose(binned_information(padded, p_x, p_y_x).I_XT, binned_information(acts, p_x, p_y_x).I_XT)
    with pytest.raises(ValueError, match="^activations are NaN for every unit"):
        binned_information(np.full((40, 2), np.nan), p_x, p_y_x)
