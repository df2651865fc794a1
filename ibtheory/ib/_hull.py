"""The achievable IB curve as the upper concave hull of computed points, and its evaluation (private helpers).

Time-sharing between two encoders (use T1 with probability a, T2 otherwise, and reveal which) achieves every point
on the segment between their (I(X;T), I(T;Y)), so the achievable region is convex and the curve F(R) is the upper
concave hull of all points found, made non-decreasing (F(R) = I(X;Y) beyond the top).
"""

from __future__ import annotations

import numpy as np

__all__ = ["upper_hull", "hull_value", "hull_inverse"]


def upper_hull(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the upper concave hull of the points (x, y), left to right, cut after the highest point.

    The point (0, 0) is always included.  Andrew's monotone chain, O(n log n).
    """
    pts = np.unique(np.stack([np.concatenate([[0.0], x]), np.concatenate([[0.0], y])], axis=1), axis=0)
    # for equal x keep the highest y (np.unique sorts by x then y)
    last = np.r_[pts[1:, 0] != pts[:-1, 0], True]
    pts = pts[last]
    hull: list[tuple[float, float]] = []
    for px, py in pts:
        while len(hull) >= 2:
            (ax, ay), (bx, by) = hull[-2], hull[-1]
            if (bx - ax) * (py - ay) - (by - ay) * (px - ax) >= 0:  # b is not strictly above segment a-p
                hull.pop()
            else:
                break
        hull.append((px, py))
    h = np.array(hull)
    top = int(np.argmax(h[:, 1]))
    h = h[: top + 1]
    return h[:, 0], h[:, 1]


def hull_value(hx: np.ndarray, hy: np.ndarray, R: np.ndarray) -> np.ndarray:
    """F(R) by linear interpolation on the hull; the top value beyond the last vertex."""
    return np.interp(R, hx, hy, left=0.0, right=hy[-1])


def hull_inverse(hx: np.ndarray, hy: np.ndarray, info: np.ndarray) -> np.ndarray:
    """Smallest R with F(R) >= info on the strictly increasing hull; +inf above the top."""
    out = np.interp(info, hy, hx)
    return np.where(info > hy[-1], np.inf, out)
