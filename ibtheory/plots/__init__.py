"""Figures: information plane, SNR phases, IB curve with layers, Langevin.  One module per kind of figure.

All figures use matplotlib's Agg backend (no screen needed), label axes with units (bits) and return the Figure.
"""

import matplotlib

matplotlib.use("Agg")
