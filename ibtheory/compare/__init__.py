"""Layers against the IB bound: distance to the curve and self-consistency with a fitted beta.

- :mod:`~ibtheory.compare.encoders`: a layer's encoder p(t|x) as a sparse table (binned, pooled over an ensemble,
  noisy), its Markov decoder p(y|t) = sum_x p(y|x) p(x|t), I(X;T), I(T;Y) and the IB distortion d(x,t).
- :mod:`~ibtheory.compare.consistency`: the mismatch M(beta) with the IB encoder equation (convex in beta) and
  the fitted beta*.
- :mod:`~ibtheory.compare.bound`: relevance / compression / certified gaps and :func:`against_bound` for a whole
  training run.
"""

from .bound import ESTIMATOR_SUFFIXES, against_bound, beta_star_stats, bound_gaps, curve_at_beta, final_summary
from .consistency import SelfConsistency, mismatch, self_consistency
from .encoders import (
    LayerEncoder,
    TaskTables,
    binned_encoder,
    encoder_from_codes,
    encoder_from_table,
    ensemble_encoder,
    layer_encoder,
    merge_equal_decoders,
    noisy_encoder,
    task_tables,
)

__all__ = [
    "against_bound", "beta_star_stats", "bound_gaps", "curve_at_beta", "final_summary", "ESTIMATOR_SUFFIXES",
    "SelfConsistency", "mismatch", "self_consistency",
    "LayerEncoder", "TaskTables", "binned_encoder", "encoder_from_codes", "encoder_from_table", "ensemble_encoder",
    "layer_encoder", "merge_equal_decoders", "noisy_encoder", "task_tables",
]
