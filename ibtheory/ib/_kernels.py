"""Compiled loops for the solver's hot paths (private): one pass over the rows instead of numpy's many.

numpy evaluates an expression such as ``u = ln r[idx] - beta max(h - w ln d1[idx] - (1 - w) ln d0[idx], 0)``
followed by a row log-sum-exp as a dozen passes over (n, B) temporaries; at the solver's sizes (|S| in the
thousands, B ~ 10 clusters a row) that costs ~20 ns a cell, mostly memory traffic and per-call overhead.  The kernels
here (numba, compiled on first use and cached beside this file) do each row in one pass: ~6 ns a cell.  The |Y| = 3
certificate's Gibbs sums over the rows (:func:`gibbs_lse`, :func:`gibbs_moments`, :func:`gibbs_values`) likewise:
4-5x numpy's at 256 rows; with :func:`gibbs_blocks` they leave out blocks of rows whose terms they would skip.

Two cores: above ``SPLIT`` rows (pairs, or units of work) a call runs as two halves, the second on one worker thread
while the caller runs the first (the kernels release the GIL), each half with its own accumulators, added after. The
caller's half is ``MAIN_EXTRA`` units larger: the worker starts its half late (on a 4096-row window, posteriors and
Newton's sums: 548 -> 463 us a pair of calls, median of five medians of 300, with the spinning hand-overs of
:class:`_Worker`). The halves are the same whether or
not a second core is there (with one core, as under ``taskset``, they run one after the other), so results do not
depend on the machine. numba's own parallel loops were not used: they need a threading layer, and the only one in
numba's wheels that survives ``fork`` (the training engine forks its workers; GNU OpenMP aborts the child) is
``workqueue``, which may not be entered from two Python threads at once and cost ~0.15 ms a launch (no faster than
one thread at 4096 rows; two halves on the worker thread here, window posteriors: 1.3x at 4096 rows, 1.75x at
16,384, 1.9x at 65,536).
"""

from __future__ import annotations

import collections
import os
import queue
import threading
from collections.abc import Callable
from typing import NamedTuple

import numba
import numpy as np
from numba.core import types
from numba.core.extending import intrinsic

__all__ = ["window_parts", "window_newton", "pair_scores", "pair_step", "pair_hessian", "block_sums",
           "band_ends", "gibbs_lse", "gibbs_moments", "gibbs_values", "gibbs_blocks", "GibbsBlocks", "GIBBS_CUT",
           "SPLIT"]

#: below this exponent exp() is subnormal or 0 (and 10-30x slower): flushed to 0, as ``_iterate.exp_nonpositive``
_FLUSH = -700.0
#: 4 units in the last place of 1: a generous bound on the rounding of one exponent's pieces and of exp
_EPS4 = 4.0 * 2.0**-52
#: rows (pairs; multipliers x blocks for the certificate's sums) from which a call runs as two halves
SPLIT = 2048
#: units of work the caller's half has beyond the worker's: the worker takes its half ~10-20 us late (the hand-over
#: and the GIL), about what 128 rows of the window kernels cost
MAIN_EXTRA = 256
#: :func:`gibbs_lse`, :func:`gibbs_moments`, :func:`gibbs_values`: terms more than this many nats below a sum's largest
#: are skipped (each under e^-50 = 2e-22 of it: the sum of n rows is low by less than n e^-50 nats)
GIBBS_CUT = 50.0


def _jit(fn):
    try:  # cached beside this file, or in numba's user cache folder
        return numba.njit(cache=True, nogil=True, error_model="numpy")(fn)
    except RuntimeError:  # no writable cache location (a read-only install and home): compile in each process
        return numba.njit(cache=False, nogil=True, error_model="numpy")(fn)


@intrinsic
def _load_acquire(typingctx, counter):
    """counter[0] of an int64 array as an atomic (acquire) load: a loop that polls it cannot have the load hoisted
    out of it, and it sees the other thread's increments."""
    sig = types.int64(counter)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.load_atomic(ary.data, "acquire", 8)

    return sig, codegen


@_jit
def _spin(counter, seen, limit):
    """Poll counter[0] (the GIL released) until it differs from ``seen`` or ``limit`` polls have passed; returns its
    last value."""
    for _ in range(limit):
        v = _load_acquire(counter)
        if v != seen:
            return v
    return _load_acquire(counter)


class _Worker:
    """One daemon thread that runs the second half of a call, and a lock so that callers from several threads take
    turns.  Hand-overs spin, then block: after each half the worker polls a counter for the next task (``SPIN``
    polls with the GIL released, keeping its core awake) before it blocks on a queue, and the caller polls a counter
    for the worker's result before it blocks on an event.  A blocked thread's wake-up cost ~25-50 us on this VM,
    10 % of them over 150 us (a halted virtual core); the queue alone took ~80 us a call on average.  The states
    (spinning or blocked) change under one small lock, so a task or a result is never posted where no one looks."""

    #: polls of a counter before a thread blocks (an atomic load each, ~0.35 ns here: ~0.7 ms, longer than the gaps
    #: between the kernel calls of a Newton iteration)
    SPIN = 2_000_000

    def __init__(self) -> None:
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.posted = np.zeros(1, dtype=np.int64)  # halves put in ``fast`` so far
        self.done = np.zeros(1, dtype=np.int64)  # halves the worker has finished
        self.issued = 0  # halves handed to the worker (a caller interrupted while waiting leaves one behind)
        self.lock = threading.Lock()  # callers take turns
        self.state = threading.Lock()  # guards spinning, waiting, fast, result
        self.spinning = False
        self.waiting = False
        self.woken = threading.Event()
        self.fast: collections.deque = collections.deque()  # halves handed over while the worker spins or runs one
        self.result: BaseException | None = None
        threading.Thread(target=self._loop, name="ibtheory-kernels", daemon=True).start()

    def _loop(self) -> None:
        taken = 0  # halves taken from ``fast``
        while True:
            fn = None
            with self.state:
                if self.fast:
                    fn, taken = self.fast.popleft(), taken + 1
                elif not self.tasks.empty():
                    fn = self.tasks.get()
                else:
                    self.spinning = True
            if fn is None:
                _spin(self.posted, taken, self.SPIN)
                with self.state:
                    if self.fast:
                        fn, taken = self.fast.popleft(), taken + 1
                    else:
                        self.spinning = False
            if fn is None:
                fn = self.tasks.get()
            try:
                fn()
                res = None
            except BaseException as exc:  # handed to the caller
                res = exc
            with self.state:
                self.result = res
                self.done[0] += 1
                if self.waiting:
                    self.woken.set()

    def both(self, mine: Callable[[], object], theirs: Callable[[], object]) -> None:
        """Run ``theirs`` on the worker and ``mine`` here; return when both are done (re-raising either's error)."""
        with self.lock:
            self.issued += 1
            mine_done = self.issued  # done[0] once the worker has finished this call's half (halves run in order)
            with self.state:
                if self.spinning:
                    self.fast.append(theirs)
                    self.posted[0] += 1
                else:
                    self.tasks.put(theirs)
            try:
                mine()
            finally:
                self._wait(mine_done)
                exc = self.result
            if exc is not None:
                raise exc

    def _wait(self, target: int) -> None:
        """Return once ``done`` reaches ``target``: spin, then block on the event."""
        while True:
            seen = int(self.done[0])
            if seen >= target:
                return
            if _spin(self.done, seen, self.SPIN) != seen:
                continue
            with self.state:
                blocked = self.waiting = self.done[0] == seen
                self.woken.clear()
            if blocked:
                self.woken.wait()
                with self.state:
                    self.waiting = False


_worker: _Worker | None = None


def _forget_worker() -> None:
    global _worker
    _worker = None  # a forked child has no worker thread: it starts its own when it needs one


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_worker)


def _two_cores() -> bool:
    try:
        return len(os.sched_getaffinity(0)) > 1
    except AttributeError:  # no affinity on this platform
        return (os.cpu_count() or 1) > 1


def _run(call: Callable[[int, int, int], object], bounds: np.ndarray | int, extra: int = MAIN_EXTRA) -> int:
    """``call(part, lo, hi)`` over [0, n): one part below ``SPLIT`` units of work, else two halves of equal work but
    ``extra`` units more in the first (``bounds``: n, or a cumulative work array of n + 1 entries, e.g. a CSR
    indptr), the second on the worker thread when this process may use two cores.  ``extra`` (default
    ``MAIN_EXTRA``, tuned for units of a row or a pair) is 0 where a unit is a whole pass over the rows.  Returns the
    number of parts."""
    if np.isscalar(bounds):
        n, total = int(bounds), int(bounds)
        h = min((n + extra) // 2, n - 1)
    else:
        n, total = len(bounds) - 1, int(bounds[-1])
        h = int(np.searchsorted(bounds, (total + extra) / 2))
        h = min(max(h, 1), n - 1) if n > 1 else 0
    if total < SPLIT or n < 2:
        call(0, 0, n)
        return 1
    if not _two_cores():
        call(0, 0, h)
        call(1, h, n)
        return 2
    global _worker
    if _worker is None:
        _worker = _Worker()
    _worker.both(lambda: call(0, 0, h), lambda: call(1, h, n))
    return 2


@_jit
def _window_parts(lo, hi, w, neg_h, beta, log_r, log_d1, log_d0, idx, valid, floor, pi, lnZ):
    B = idx.shape[1]
    for i in range(lo, hi):
        wi, hx = w[i], neg_h[i]
        m = -np.inf
        for j in range(B):
            u = -np.inf
            if valid[i, j]:
                t = idx[i, j]
                a = 0.0 if wi == 0.0 else wi * log_d1[t]  # 0 ln 0 = 0 (a hard row in a hard cluster)
                b = 0.0 if wi == 1.0 else (1.0 - wi) * log_d0[t]
                kl = hx - a - b
                u = log_r[t] - beta * (0.0 if kl < 0.0 else kl)
            pi[i, j] = u
            if u > m:
                m = u
        if not np.isfinite(m):
            m = 0.0
        z = 0.0
        for j in range(B):
            e = pi[i, j] - m
            e = np.exp(e) if e > floor else 0.0
            pi[i, j] = e
            z += e
        lnZ[i] = np.log(z) + m
        inv = 1.0 / z
        for j in range(B):
            pi[i, j] *= inv


@_jit
def _window_newton(lo, hi, pi, idx, valid, w, p, d, beta, pos, tiny, acc, abT, reach):
    u = abT.shape[1] - 1
    B = idx.shape[1]
    cs = np.empty(B, dtype=np.int64)
    pa = np.empty(B)
    pb = np.empty(B)
    aa = np.empty(B)
    bb = np.empty(B)
    for i in range(lo, hi):
        k = 0
        for j in range(B):
            if valid[i, j]:
                t = idx[i, j]
                q = pi[i, j]
                dw = w[i] - d[t]
                pq = p[i] * q
                acc[0, t] += pq
                acc[1, t] += pq * dw
                acc[2, t] += pq * dw * dw
                if q > tiny:  # a live slot, inserted in order of its coordinate (windows come in band order)
                    c, b_ = 2 * pos[t], beta * q * dw
                    m = k
                    while m > 0 and cs[m - 1] > c:
                        cs[m], aa[m], bb[m], pa[m], pb[m] = cs[m - 1], aa[m - 1], bb[m - 1], pa[m - 1], pb[m - 1]
                        m -= 1
                    if m > 0 and cs[m - 1] == c:
                        raise ValueError("a cluster appears twice in a row's window")
                    cs[m], aa[m], bb[m], pa[m], pb[m] = c, q, b_, pq, p[i] * b_
                    k += 1
        if k == 0:
            continue
        span = cs[k - 1] - cs[0] + 1
        if span > u:
            raise ValueError("a window's clusters lie farther apart than the band")
        if span > reach[0]:
            reach[0] = span
        for j2 in range(k):  # entry (r, c), r <= c, at abT[c, u + r - c]: rows c and c + 1 of the transposed band
            c = cs[j2]
            abT[c, u] += pa[j2] * aa[j2]  # (rho, rho), (rho, eta), (eta, eta) of one cluster
            abT[c + 1, u - 1] += pa[j2] * bb[j2]
            abT[c + 1, u] += pb[j2] * bb[j2]
            for j1 in range(j2):
                o = u + cs[j1] - c
                abT[c, o] += pa[j1] * aa[j2]  # (rho_1, rho_2)
                abT[c, o + 1] += pb[j1] * aa[j2]  # (eta_1, rho_2)
                abT[c + 1, o - 1] += pa[j1] * bb[j2]  # (rho_1, eta_2)
                abT[c + 1, o] += pb[j1] * bb[j2]  # (eta_1, eta_2)


# _pair_scores and _pair_step write the pair score out twice on purpose: a shared inline helper taking row views
# (W[s], ld_fin[t]) ran 2.5x slower (20,000 x 6, 924k pairs: 18 -> 46 ms a map)
@_jit
def _pair_scores(lo, hi, Wt, neg_h, beta, log_pt, ld_fin, partial, log_dec, cols, rows, use_rows, out):
    n_y = ld_fin.shape[1]
    for k in range(lo, hi):
        r = rows[k] if use_rows else k
        t = cols[k]
        cross = 0.0
        for y in range(n_y):
            cross += Wt[y, r] * ld_fin[t, y]
        kl = neg_h[r] - cross
        kl = 0.0 if kl < 0.0 else kl
        if partial[t]:  # p(y|t) = 0 (or not a number) for some y: KL = +inf if W[s, y] > 0 there
            for y in range(n_y):
                if not np.isfinite(log_dec[t, y]) and Wt[y, r] > 0.0:
                    kl = np.inf
        out[k] = log_pt[t] - beta * kl


@_jit
def _pair_step(lo, hi, W, neg_h, p_s, beta, log_pt, ld_fin, partial, log_dec, indptr, cols, L, lnZ, p_t, num):
    n_y = W.shape[1]
    width = 1
    for s in range(lo, hi):
        width = max(width, indptr[s + 1] - indptr[s])
    E = np.empty(width)
    for s in range(lo, hi):
        a, b = indptr[s], indptr[s + 1]
        m = -np.inf
        for k in range(a, b):
            t = cols[k]
            cross = 0.0
            for y in range(n_y):
                cross += W[s, y] * ld_fin[t, y]
            kl = neg_h[s] - cross
            kl = 0.0 if kl < 0.0 else kl
            if partial[t]:
                for y in range(n_y):
                    if not np.isfinite(log_dec[t, y]) and W[s, y] > 0.0:
                        kl = np.inf
            u = log_pt[t] - beta * kl
            L[k] = u
            if u > m:
                m = u
        if not np.isfinite(m):
            m = 0.0
        z = 0.0
        for k in range(a, b):
            e = L[k] - m
            L[k] = e
            e = np.exp(e) if e > _FLUSH else 0.0
            E[k - a] = e
            z += e
        lz = np.log(z)
        lnZ[s] = m + lz
        scale = p_s[s] / z
        for k in range(a, b):
            L[k] -= lz  # ln p(t|s)
            q = E[k - a] * scale  # p(t, s)
            t = cols[k]
            p_t[t] += q
            for y in range(n_y):
                num[t, y] += q * W[s, y]


@_jit
def _pair_hessian(lo, hi, W, p_s, beta, dec, lab, indptr, cols, L, tiny, H):
    n_y = W.shape[1]
    width = 1
    for s in range(lo, hi):
        width = max(width, indptr[s + 1] - indptr[s])
    ts = np.empty(width, dtype=np.int64)
    pis = np.empty(width)
    g = np.empty((width, n_y))
    for s in range(lo, hi):
        k = 0
        for kk in range(indptr[s], indptr[s + 1]):  # the row's pairs with pi above tiny, and their gradients of u
            q = np.exp(L[kk]) if L[kk] > _FLUSH else 0.0
            if q > tiny:
                t = cols[kk]
                ts[k], pis[k] = t, q
                g[k, 0] = 1.0
                for j in range(1, n_y):
                    y = lab[t, j - 1]
                    g[k, j] = beta * (W[s, y] - dec[t, y])
                k += 1
        ps = p_s[s]
        for a in range(k):
            ra = ts[a] * n_y
            ca = ps * pis[a]
            for b in range(a, k):
                rb = ts[b] * n_y
                c = ca * pis[b]
                if b == a:  # the cluster's own term: -p pi g g^T, with the Gram's p pi^2 g g^T
                    c -= ca
                for i in range(n_y):
                    ci = c * g[a, i]
                    for j in range(n_y):
                        H[ra + i, rb + j] += ci * g[b, j]


@numba.njit(inline="always", error_model="numpy")
def _kl2(w, h, l1, l0):
    cross = (w * l1 if w > 0.0 else 0.0) + ((1.0 - w) * l0 if w < 1.0 else 0.0)
    kl = h - cross
    return 0.0 if kl < 0.0 else kl  # NaN stays NaN, as numpy's maximum(NaN, 0)


@_jit
def _band_ends(lo, hi, w, neg_h, L1, L0, a, b, kappa, first, last):
    K = L1.size
    for x in range(lo, hi):
        if not np.isfinite(kappa[x]):  # both neighbours at KL = +inf: every cluster
            first[x], last[x] = 0, K - 1
            continue
        wx, hx, kx = w[x], neg_h[x], kappa[x]
        i, j = 0, a[x]  # the smallest index in [0, a] with KL <= kappa (KL falls towards w there)
        while i < j:
            mid = (i + j) // 2
            if _kl2(wx, hx, L1[mid], L0[mid]) <= kx:
                j = mid
            else:
                i = mid + 1
        first[x] = i
        i, j = b[x], K - 1  # the largest index in [b, K - 1] with KL <= kappa (KL rises away from w there)
        while i < j:
            mid = (i + j + 1) // 2
            if _kl2(wx, hx, L1[mid], L0[mid]) <= kx:
                i = mid
            else:
                j = mid - 1
        last[x] = max(i, first[x])


@numba.njit(inline="always", error_model="numpy")
def _neumaier(acc, comp, v):
    t = acc + v
    return t, comp + ((acc - t) + v if abs(acc) >= abs(v) else (v - t) + acc)


@_jit
def _block_sums(lo, hi, a, w, plane, lam, a0, w0, near, indptr, act_blocks, block, base, w_ref, w_mid, sums):
    for i in range(lo, hi):
        P, lm, ka, kb = plane[i], lam[i], indptr[i], indptr[i + 1]
        if near[i]:
            c0, cw = a0[i], w0[i]
        else:  # the reference is the row with the largest -a - lambda w (the first on ties, as numpy's argmax)
            best, c0, cw = -np.inf, np.nan, np.nan
            for kk in range(ka, kb):
                for r in range(act_blocks[kk] * block, (act_blocks[kk] + 1) * block):
                    R = -a[P, r] - lm * w[r]
                    if R > best:
                        best, c0, cw = R, a[P, r], w[r]
        mx, a_j, w_j = -np.inf, np.nan, np.nan  # the largest term R_x = c0 - a_x - lambda (w_x - cw), and its row
        for kk in range(ka, kb):
            for r in range(act_blocks[kk] * block, (act_blocks[kk] + 1) * block):
                R = c0 - a[P, r]
                R -= lm * (w[r] - cw)
                if R > mx:
                    mx, a_j, w_j = R, a[P, r], w[r]
        if near[i]:  # the line relative to the largest term's row
            base[i], w_ref[i] = -a_j, w_j
        else:
            base[i], w_ref[i] = -c0 + mx, cw
        w_mid[i] = cw
        z = zc = s1 = s1c = s2 = s2c = spread = 0.0
        for kk in range(ka, kb):
            for r in range(act_blocks[kk] * block, (act_blocks[kk] + 1) * block):
                dw = w[r] - cw
                d0 = c0 - a[P, r]
                R = d0 - lm * dw
                R = R - mx if R == R else -np.inf  # inf - inf (w = w_ref at lambda = +-inf, padding): no term
                if near[i]:  # clamped at e^-600: every term at least its true value, the sum an upper bound
                    E = np.exp(R if R > -600.0 else -600.0)
                elif R > _FLUSH:
                    E = np.exp(R)
                else:  # flushed: the true term is below e^-700
                    E = 0.0
                    spread += 1e-304
                if E > 0.0 and np.isfinite(d0):  # the exponent's rounding: (c0 - a), lambda dw, their
                    # difference, the shift, exp (a padding row's e^-600 stands for 0: an over-estimate already)
                    spread += E * _EPS4 * (1.0 + abs(d0) + abs(lm * dw) + abs(max(R, -600.0)) + abs(mx))
                z, zc = _neumaier(z, zc, E)
                E *= dw
                s1, s1c = _neumaier(s1, s1c, E)
                E *= dw
                s2, s2c = _neumaier(s2, s2c, E)
        sums[i, 0], sums[i, 1], sums[i, 2], sums[i, 3] = z + zc, s1 + s1c, s2 + s2c, spread


def _finite_decoders(log_dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ln p(y|t) with non-finite entries set to 0, and the clusters that have one."""
    fin = np.isfinite(log_dec)
    return np.where(fin, log_dec, 0.0), ~fin.all(axis=1)


def window_parts(w: np.ndarray, p: np.ndarray, neg_h: np.ndarray, beta: float, log_r: np.ndarray,
                 log_d1: np.ndarray, log_d0: np.ndarray, idx: np.ndarray, valid: np.ndarray, cut: float = 700.0
                 ) -> tuple[np.ndarray, np.ndarray, float]:
    """|Y| = 2 posteriors on windows of clusters: for row x and its window entries t = idx[x, j] (``valid``),

        u_xt = ln r_t - beta max(KL[w_x || d_t], 0),   KL = -H(w_x) - w_x ln d_t - (1 - w_x) ln (1 - d_t)  (nats),

    pi_xt = exp(u_xt - ln Z_x), ln Z_x = ln sum_t exp(u_xt) over the window; returns (pi (n, B), ln Z (n),
    F = -sum_x p(x) ln Z_x).  ``neg_h`` is -H(w_x) in nats, ``log_d1``/``log_d0`` ln d_t / ln (1 - d_t).  Terms
    more than ``cut`` nats below their row's largest count as 0 (no exp; ln Z low by at most B e^-cut; at most 700,
    below which exp is subnormal)."""
    n, B = idx.shape
    pi, lnZ = np.empty((n, B)), np.empty(n)
    beta, floor = float(beta), -min(float(cut), -_FLUSH)
    _run(lambda _, lo, hi: _window_parts(lo, hi, w, neg_h, beta, log_r, log_d1, log_d0, idx, valid, floor, pi, lnZ),
         n)
    return pi, lnZ, -float(p @ lnZ)  # numpy's pairwise sum: Newton's line search compares F to ~1e-15


def window_newton(pi: np.ndarray, idx: np.ndarray, valid: np.ndarray, w: np.ndarray, p: np.ndarray, d: np.ndarray,
                  beta: float, pos: np.ndarray, tiny: float = 1e-14, u: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """|Y| = 2 Newton's sums on windows in one pass over the valid slots (cluster t = idx[x, j]): the per-cluster
    sums m_t = sum_x p(x) pi_xt, sum_x p(x) pi_xt (w_x - d_t) and sum_x p(x) pi_xt (w_x - d_t)^2, and the Gram
    sums sum_x p(x) g_x g_x^T of g_x = (pi_xt, beta pi_xt (w_x - d_t)) over the slots with pi > ``tiny`` (a row's
    largest slot is at least 1/B: 1e-14 of it is below the sums' rounding).  The Gram sums come in LAPACK's upper
    band storage, coordinates interleaved in band order (cluster t's pi entry at 2 pos[t], its other entry at
    2 pos[t] + 1): entry (r, c), r <= c, at [u + r - c, c] of a (u + 1, 2K) array, u = 2 B - 1 for windows of B
    consecutive clusters in band order (every pair of a row's slots lies within it; windows in any order need
    ``u`` = 2K - 1, the whole matrix; a pair outside the band, or a cluster twice in a row's live slots, raises
    ValueError).  Returns (band, the three per-cluster sums).  The band returned has only as many superdiagonals
    as some row's live slots reach (at least one: a cluster's own (rho, eta) entry)."""
    K = pos.size
    u = min(2 * idx.shape[1] - 1 if u is None else int(u), 2 * K - 1)
    acc, abT, reach = np.zeros((2, 3, K)), np.zeros((2, 2 * K, u + 1)), np.ones((2, 1), dtype=np.int64)
    beta, tiny = float(beta), float(tiny)
    parts = _run(lambda k, lo, hi: _window_newton(lo, hi, pi, idx, valid, w, p, d, beta, pos, tiny, acc[k],
                                                  abT[k], reach[k]), idx.shape[0])
    tot, ab = (acc[0] + acc[1], abT[0] + abT[1]) if parts == 2 else (acc[0], abT[0])
    return ab.T[u - min(int(reach.max()), u):], tot[0], tot[1], tot[2]


def pair_scores(Wt: np.ndarray, neg_h: np.ndarray, beta: float, log_pt: np.ndarray, log_dec: np.ndarray,
                cols: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """ln p(t) - beta max(KL[W_s || p(y|t)], 0) (nats) of pairs (s, t = ``cols``): KL = sum_y W ln W - sum_y W ln
    p(y|t), +inf where p(y|t) = 0 (or is not a number) < W[s, y].  ``Wt`` (n_y, N), ``neg_h`` (N,) hold the classes
    (with ``rows`` the column of each pair's class; without, one column per pair)."""
    use = rows is not None
    rows = rows if use else np.empty(0, dtype=np.intp)
    ld_fin, partial = _finite_decoders(log_dec)
    out = np.empty(cols.size)
    beta = float(beta)
    _run(lambda _, lo, hi: _pair_scores(lo, hi, Wt, neg_h, beta, log_pt, ld_fin, partial, log_dec, cols, rows, use,
                                        out), cols.size)
    return out


def pair_step(W: np.ndarray, neg_h: np.ndarray, p_s: np.ndarray, beta: float, log_pt: np.ndarray,
              log_dec: np.ndarray, indptr: np.ndarray, cols: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The IB map on the pairs of a support (class s: clusters ``cols[indptr[s]:indptr[s + 1]]``): per pair
    ln p(t|s) = u_st - ln Z_s with u_st = ln p(t) - beta KL[W_s || p(y|t)] and Z_s summed over the class's pairs
    (terms below e^-700 of the largest flushed to 0); returns (ln p(t|s) (nnz,), ln Z (n_s,), p(t) =
    sum_s p(s) p(t|s) (K,), sum_s p(s) p(t|s) W[s, y] (K, n_y))."""
    K, n_y = log_dec.shape
    ld_fin, partial = _finite_decoders(log_dec)
    L, lnZ = np.empty(cols.size), np.empty(W.shape[0])
    p_t, num = np.zeros((2, K)), np.zeros((2, K, n_y))
    beta = float(beta)
    parts = _run(lambda k, lo, hi: _pair_step(lo, hi, W, neg_h, p_s, beta, log_pt, ld_fin, partial, log_dec, indptr,
                                              cols, L, lnZ, p_t[k], num[k]), indptr)
    if parts == 2:
        return L, lnZ, p_t[0] + p_t[1], num[0] + num[1]
    return L, lnZ, p_t[0], num[0]


def block_sums(a: np.ndarray, w: np.ndarray, plane: np.ndarray, lam: np.ndarray, a0: np.ndarray, w0: np.ndarray,
               near: np.ndarray, indptr: np.ndarray, act_blocks: np.ndarray, block: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The |Y| = 2 certificate's vertex sums over the active blocks of rows (rows ``act_blocks[indptr[i]:indptr[i +
    1]]`` x ``block`` of ``a[plane[i]]``, ``w``) of each multiplier lambda_i.  With ``near[i]`` the terms are
    R_x = a0 - a_x - lambda (w_x - w0) (``a0``, ``w0`` a reference row), shifted by their largest and clamped at
    e^-600 (so the sum stays an upper bound); else R_x = -(a_x - a_r) - lambda (w_x - w_r) relative to the largest
    row r itself, below e^-700 flushed to 0.  Returns (C0, w_ref, w_c, S): C0 + ln z is the line's value at
    w_ref (the largest term's row), w_c the centre of the moments and S (m, 4) the sums of E, E (w - w_c),
    E (w - w_c)^2, each Neumaier-compensated (error ~2 ulp, below numpy's pairwise sums'), and a bound on how far
    the sum of E may be off through the rounding of each term's exponent (4 ulp of each piece of it, and of exp)
    and the terms flushed."""
    m = lam.size
    base, w_ref, w_mid, sums = np.empty(m), np.empty(m), np.empty(m), np.empty((m, 4))
    block = int(block)
    _run(lambda _, lo, hi: _block_sums(lo, hi, a, w, plane, lam, a0, w0, near, indptr, act_blocks, block, base, w_ref,
                                       w_mid, sums), indptr * block)
    return base, w_ref, w_mid, sums


def band_ends(w: np.ndarray, neg_h: np.ndarray, L1: np.ndarray, L0: np.ndarray, a: np.ndarray, b: np.ndarray,
              kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two bisections of ``ibtheory.ib._band.band`` per row x, on clusters sorted by d (``L1``, ``L0``: ln d,
    ln (1 - d)): the smallest index in [0, a_x] and the largest in [b_x, K - 1] whose KL[w_x || d] is at most
    kappa_x (every cluster where kappa_x is not finite); last is at least first."""
    n = w.size
    first, last = np.empty(n, dtype=np.intp), np.empty(n, dtype=np.intp)
    _run(lambda _, lo, hi: _band_ends(lo, hi, w, neg_h, L1, L0, a, b, kappa, first, last), n)
    return first, last


def pair_hessian(W: np.ndarray, p_s: np.ndarray, beta: float, log_dec: np.ndarray, lab: np.ndarray,
                 indptr: np.ndarray, cols: np.ndarray, log_pi: np.ndarray, tiny: float = 1e-14) -> np.ndarray:
    """The pair part of Newton's Hessian for |Y| > 2 on a support (class s: clusters ``cols[indptr[s]:indptr[s +
    1]]``, posteriors ``log_pi`` = ln pi_st): with g_st = (1, beta (W[s, y] - p(y|t)) for the labels y = ``lab[t]``)
    the gradient of u_st = ln p(t) - beta KL[W_s || p(y|t)] in cluster t's coordinates (ln p(t), and ln p(y|t) -
    ln p(y_ref|t) for y != y_ref),

        sum_s p(s) [ (sum_t pi_st g_st) (sum_t pi_st g_st)^T - sum_t pi_st g_st g_st^T ]      (K n_y x K n_y),

    cluster t's coordinates at t n_y, ..., t n_y + n_y - 1.  Pairs with pi <= ``tiny`` are left out (as
    :func:`window_newton`)."""
    K, n_y = log_dec.shape
    D = K * n_y
    Hs = np.zeros((2, D, D))
    dec = np.exp(log_dec)
    beta, tiny = float(beta), float(tiny)
    parts = _run(lambda k, lo, hi: _pair_hessian(lo, hi, W, p_s, beta, dec, lab, indptr, cols, log_pi, tiny, Hs[k]),
                 indptr)
    S = Hs[0] + Hs[1] if parts == 2 else Hs[0]
    # one triangle of each row's pairs was summed: mirror it, keeping each cluster's own block once
    blocks = S.reshape(K, n_y, K, n_y)
    own = np.einsum("tiuj,tu->tiuj", blocks, np.eye(K)).reshape(D, D)
    return S + S.T - own


#: rows per block of :class:`GibbsBlocks` (blocks whose largest possible logit is ``GIBBS_CUT`` below a sum's
#: largest term are skipped whole)
GIBBS_BLOCK = 32


class GibbsBlocks(NamedTuple):
    """The rows of a Gibbs sum (``a`` (n,), ``Wt`` (n, 2)) in a Z-order of W~ (so blocks of ``GIBBS_BLOCK``
    consecutive rows are compact), with per block its first row (``start``, one more at the end), its largest -a
    (``top``) and the box of its W~ (``box``: w0 min, w0 max, w1 min, w1 max)."""

    a: np.ndarray
    Wt: np.ndarray
    start: np.ndarray
    top: np.ndarray
    box: np.ndarray


def gibbs_blocks(a: np.ndarray, Wt: np.ndarray, block: int = GIBBS_BLOCK) -> GibbsBlocks:
    """:class:`GibbsBlocks` of the rows (a, W~): for a multiplier lambda a block's logits -a_x - lambda.W~_x are at
    most top - min over its box of lambda.w (at a corner), so a block that bound puts more than ``GIBBS_CUT`` nats
    below the largest logit holds only terms the sums skip anyway.  One block (the rows as given) below 4 blocks'
    rows or where some a is not finite."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    Wt = np.ascontiguousarray(Wt, dtype=np.float64)
    n = len(a)
    if n < 4 * block or not np.all(np.isfinite(a)):
        order, start = np.arange(n), np.array([0, n])
    else:
        q = np.clip((Wt * 1024).astype(np.int64), 0, 1023)
        code = np.zeros(n, np.int64)
        for bit in range(10):  # interleave the bits of the two coordinates (Z-order)
            code |= ((q[:, 0] >> bit) & 1) << (2 * bit) | ((q[:, 1] >> bit) & 1) << (2 * bit + 1)
        order = np.argsort(code, kind="stable")
        start = np.append(np.arange(0, n, block), n)
    a, Wt = a[order], Wt[order]
    top = np.maximum.reduceat(-a, start[:-1]) if n else np.zeros(0)
    box = np.stack([np.minimum.reduceat(Wt[:, 0], start[:-1]), np.maximum.reduceat(Wt[:, 0], start[:-1]),
                    np.minimum.reduceat(Wt[:, 1], start[:-1]), np.maximum.reduceat(Wt[:, 1], start[:-1])], 1) \
        if n else np.zeros((0, 4))
    return GibbsBlocks(a, Wt, start, top, np.ascontiguousarray(box))


@numba.njit(inline="always", error_model="numpy")
def _block_bounds(top, box, l0, l1, ub):
    """Each block's largest possible logit, -a - lambda.w at most top - min over the box of lambda.w, plus a
    rounding margin (the rows' own logits carry ~1e-16 (|a| + |lambda|)); returns the largest."""
    big = -np.inf
    slack = 1e-12 * (1.0 + abs(l0) + abs(l1))
    for b in range(top.shape[0]):
        u = top[b] - (l0 * box[b, 0] if l0 > 0.0 else l0 * box[b, 1]) \
            - (l1 * box[b, 2] if l1 > 0.0 else l1 * box[b, 3])
        u += slack * (1.0 + abs(top[b]))
        ub[b] = u
        if u > big:
            big = u
    return big


@numba.njit(inline="always", error_model="numpy")
def _gibbs_top(a, Wt, start, ub, l0, l1):
    """The largest logit -a_x - lambda.W~_x over the rows (-inf when none is larger), blocks whose bound ``ub``
    cannot beat the largest found left out."""
    m = -np.inf
    for b in range(ub.shape[0]):
        if ub[b] > m:
            for x in range(start[b], start[b + 1]):
                z = -a[x] - l0 * Wt[x, 0] - l1 * Wt[x, 1]
                if z > m:
                    m = z
    return m


#: what :func:`_gibbs` sums: A only, A with the mean and covariance, or the Gibbs value H(q) - a.q with the mean
_LSE, _MOMENTS, _VALUES = 0, 1, 2


@_jit
def _gibbs(lo, hi, a, Wt, start, top, box, lam, cut, mode, A, S):
    """Per multiplier r: A[r] = ln sum_x e_x (``_LSE``, ``_MOMENTS``; S[r] = mean, c00, c01, c11 for the latter) or
    H(q) - a.q of q = e / sum e (``_VALUES``; S[r, :2] = its mean), e_x = exp(-a_x - lambda.W~_x) less the
    largest, terms more than ``cut`` below it skipped and blocks of only such terms not visited."""
    ub = np.empty(top.shape[0])
    for r in range(lo, hi):
        l0, l1 = lam[r, 0], lam[r, 1]
        big = _block_bounds(top, box, l0, l1, ub)
        m = _gibbs_top(a, Wt, start, ub, l0, l1) if np.isfinite(big) else big
        if not np.isfinite(m):  # -inf: every term 0; +inf or nan: the sum is too
            A[r] = -np.inf if mode == _VALUES else m
            if mode != _LSE:  # (S is empty for A alone)
                for k in range(S.shape[1]):
                    S[r, k] = np.nan
            continue
        s = s0 = s1 = s00 = s01 = s11 = sz = sa = 0.0
        for b in range(ub.shape[0]):
            if not ub[b] - m > -cut:  # every row of the block more than cut below the largest
                continue
            for x in range(start[b], start[b + 1]):
                z = -a[x] - l0 * Wt[x, 0] - l1 * Wt[x, 1] - m
                if z > -cut:
                    e = np.exp(z)
                    s += e
                    if mode != _LSE:
                        w0, w1 = Wt[x, 0], Wt[x, 1]
                        s0 += e * w0
                        s1 += e * w1
                        if mode == _MOMENTS:
                            s00 += e * w0 * w0
                            s01 += e * w0 * w1
                            s11 += e * w1 * w1
                        else:
                            sz += e * z
                            sa += e * a[x]
        if mode == _VALUES:  # -ln q_x = ln s - (z_x - m)
            A[r] = np.log(s) - sz / s - sa / s
        else:
            A[r] = m + np.log(s)
        if mode != _LSE:
            m0, m1 = s0 / s, s1 / s
            S[r, 0], S[r, 1] = m0, m1
            if mode == _MOMENTS:
                S[r, 2], S[r, 3] = max(s00 / s - m0 * m0, 0.0), s01 / s - m0 * m1
                S[r, 4] = max(s11 / s - m1 * m1, 0.0)


def _rows(a, Wt, blocks):
    return gibbs_blocks(a, Wt, block=max(len(a), 1)) if blocks is None else blocks


def gibbs_lse(a: np.ndarray, Wt: np.ndarray, lam: np.ndarray, blocks: GibbsBlocks | None = None) -> np.ndarray:
    """A(lambda) = ln sum_x exp(-a_x - lambda.W~_x) (nats) for rows ``lam`` (M, 2), ``Wt`` = W~ (n, 2): one pass per
    row, terms more than ``GIBBS_CUT`` nats below the largest skipped (the result is low by less than
    n e^-GIBBS_CUT nats); with ``blocks`` (:func:`gibbs_blocks` of the same rows, which then replace a and Wt) the
    blocks of only such terms are not visited."""
    g = _rows(a, Wt, blocks)
    lam = np.ascontiguousarray(lam, dtype=np.float64).reshape(-1, 2)
    A = np.empty(len(lam))
    _run(lambda _, lo, hi: _gibbs(lo, hi, *g, lam, GIBBS_CUT, _LSE, A, A[:0, None]), len(lam), extra=0)
    return A


def gibbs_moments(a: np.ndarray, Wt: np.ndarray, lam: np.ndarray,
                  blocks: GibbsBlocks | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A(lambda), the Gibbs mean of W~ (M, 2), its covariance (M, 2, 2)) under q ~ exp(-a - W~ lambda), as
    :func:`gibbs_lse`."""
    g = _rows(a, Wt, blocks)
    lam = np.ascontiguousarray(lam, dtype=np.float64).reshape(-1, 2)
    A, S = np.empty(len(lam)), np.empty((len(lam), 5))
    _run(lambda _, lo, hi: _gibbs(lo, hi, *g, lam, GIBBS_CUT, _MOMENTS, A, S), len(lam), extra=0)
    cov = np.stack([S[:, 2], S[:, 3], S[:, 3], S[:, 4]], axis=1).reshape(-1, 2, 2)
    return A, S[:, :2], cov


def gibbs_values(a: np.ndarray, Wt: np.ndarray, lam: np.ndarray,
                 blocks: GibbsBlocks | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For rows ``lam`` (M, 2): H(q) - a.q (nats) of q_x = e_x / sum e, e_x = exp(-a_x - lambda.W~_x) shifted by its
    largest and 0 more than ``GIBBS_CUT`` nats below it (the q formed, a distribution: its value is exact up to
    rounding, so it is a valid lower bound however large lambda is), and its mean of W~ (M, 2); -inf and nan where
    no term is finite; ``blocks`` as in :func:`gibbs_lse`."""
    g = _rows(a, Wt, blocks)
    lam = np.ascontiguousarray(lam, dtype=np.float64).reshape(-1, 2)
    out, mean = np.empty(len(lam)), np.empty((len(lam), 2))
    _run(lambda _, lo, hi: _gibbs(lo, hi, *g, lam, GIBBS_CUT, _VALUES, out, mean), len(lam), extra=0)
    return out, mean
