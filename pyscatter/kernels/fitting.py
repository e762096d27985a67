"""Vectorised, weighted Levenberg--Marquardt fitting of many azimuthal profiles at once.

:func:`fit_profiles` fits a whole block of profiles in one call: the normal equations
``(J^T W J + lambda D) delta = J^T W r`` of every row are built and solved together (a leading
batch axis), with a damping ``lambda`` per row; only the loop over iterations is in Python.
:func:`fit_profiles_reference` is its slow, obvious twin (``scipy.optimize.curve_fit`` row by
row) used by the tests. Both return a :class:`FitResult` with the same conventions: parameters
in the canonical form of the model, 1-sigma errors scaled like ``curve_fit(absolute_sigma=...)``,
and a :class:`FitStatus` per row. A row that cannot be fitted gets NaN and a status; nothing
raises in the middle of a block.

Isotropic profiles are detected, not fitted into a spike: a profile is ISOTROPIC when either
its 2-fold harmonic (``c cos 2chi + s sin 2chi`` on top of a linear background) or the full
model does not improve significantly on a flat + linear background (F-tests at
``isotropy_alpha``). The noise variance of these tests comes from the median difference of
consecutive bins of the harmonic model's residuals: it holds whatever signal that model misses
(a narrow peak), and a single outlier bin (a zinger) moves neither it nor the harmonic. An
isotropic row reports the linear background and a zero peak (``kappa = 0``, so S = 0, for
Maier--Saupe; ``I = 0`` for pseudo-Voigt), with NaN for the undefined director and shape.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import cast

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from pyscatter.errors import InputError
from pyscatter.kernels.levenberg_marquardt import covariance, levenberg_marquardt, sandwich
from pyscatter.kernels.models import (
    ProfileModel,
    _harmonic_design,
    _scaled_pinv,
    _weighted_lstsq,
    get_model,
)
from pyscatter.kernels.row_products import bin_dot, combine, gram, small_matmul

__all__ = ["FitResult", "FitStatus", "excluded_bins", "fit_profiles", "fit_profiles_reference"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Rows fitted together; bounds the memory of the Jacobian block (rows x n_chi x n_par)
_BLOCK_ROWS = 256
#: A significant orientation whose strength parameter is below this many sigma is WEAK
_WEAK_SIGMAS = 3.0


class FitStatus(IntEnum):
    """Outcome of fitting one profile (stored as int8).

    OK
        Converged; both isotropy tests reject isotropy and the strength parameter (``kappa``
        for Maier--Saupe, ``I`` for pseudo-Voigt) is at least 3 sigma. Parameters are valid.
    ISOTROPIC
        No significant orientation: the 2-fold harmonic or the model does not improve on a flat
        + linear background (F-test p-value above ``isotropy_alpha``, noise from differences
        of consecutive bins, see the module docstring). Parameters hold the
        weighted linear background and a zero peak (``I = 0``, and ``kappa = 0`` so S = 0);
        the director and the shape parameters are NaN, as are the peak errors.
    WEAK
        Converged and significant, but the strength parameter is below 3 sigma: the parameters
        are the fit, use them with care. Also the Maier--Saupe ``kappa -> 0`` limit (the best
        Maier--Saupe curve is a pure ``cos^2`` term): ``kappa = 0`` (so S = 0), the director
        ``x0`` and the slope ``b`` are defined, ``I`` and ``a`` are NaN (they diverge there).
    NOT_CONVERGED
        Oriented, but the fit did not converge in ``max_iter`` steps. Parameters are NaN.
    TOO_FEW_POINTS
        No more valid (finite, positive-sigma) bins than parameters. Parameters are NaN.
    FAILED
        Non-finite values, a singular covariance, or an unphysical optimum (a negative peak
        amplitude, i.e. a dip). Parameters are NaN.
    """

    OK = 0
    ISOTROPIC = 1
    WEAK = 2
    NOT_CONVERGED = 3
    TOO_FEW_POINTS = 4
    FAILED = 5


@dataclass(frozen=True)
class FitResult:
    """Result of fitting ``n`` profiles with a model of ``n_par`` parameters.

    Attributes
    ----------
    params : ndarray, shape (n, n_par), float64
        Canonical parameters (see the model's ``normalise``); NaN for NOT_CONVERGED,
        TOO_FEW_POINTS and FAILED rows; background + zero peak for ISOTROPIC rows (see
        :class:`FitStatus`).
    errors : ndarray, shape (n, n_par), float64
        1-sigma errors, the square roots of the covariance diagonal at the optimum, scaled
        like ``curve_fit(absolute_sigma=...)`` (by the reduced chi^2 unless absolute); with
        a ``correlation`` of the bins, of the sandwich covariance.
    r2 : ndarray, shape (n,)
        Weighted coefficient of determination ``1 - chi2 / sum w (y - mean_w y)^2``.
    reduced_chi2 : ndarray, shape (n,)
        ``chi2 / (n_valid - n_par)`` (``n_par = 2`` for ISOTROPIC rows, the background model).
    status : ndarray, shape (n,), int8
        :class:`FitStatus` codes.
    n_iter : ndarray, shape (n,), int32
        Levenberg--Marquardt steps tried (function evaluations for the reference).
    param_names : tuple of str
    covariance : ndarray, shape (n, n_par, n_par), float64, optional
        The covariance whose diagonal ``errors`` are (canonical parameters); NaN where the
        errors are NaN.
    """

    params: FloatArray
    errors: FloatArray
    r2: FloatArray
    reduced_chi2: FloatArray
    status: NDArray[np.int8]
    n_iter: NDArray[np.int32]
    param_names: tuple[str, ...]
    covariance: FloatArray | None = None

    def correlation(self, first: str, second: str) -> FloatArray:
        """Correlation coefficient of parameters ``first`` and ``second``, shape (n,)."""
        if self.covariance is None:
            return np.full(len(self), np.nan)
        i, j = (self._index(name) for name in (first, second))
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.covariance[:, i, j] / (self.errors[:, i] * self.errors[:, j])

    def _index(self, name: str) -> int:
        try:
            return self.param_names.index(name)
        except ValueError:
            raise InputError(
                f"no parameter {name!r}; expected one of {', '.join(self.param_names)}"
            ) from None

    def __len__(self) -> int:
        return int(self.status.shape[0])

    def __getitem__(self, name: str) -> FloatArray:
        """The column of parameter ``name``, shape (n,)."""
        return self.params[:, self._index(name)]


# ----------------------------------------------------------------------------------------------
# input checking


def _prepare(
    chi_deg: ArrayLike, profiles: ArrayLike, sigma: ArrayLike | None
) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray]:
    """Check inputs; return chi (m,), y (n, m) with masked bins zeroed, weights w, valid mask."""
    chi = np.asarray(chi_deg, dtype=float)
    if chi.ndim != 1 or chi.size == 0 or not np.isfinite(chi).all():
        raise InputError(f"chi_deg must be a finite 1-d array; got shape {chi.shape}")
    y = np.asarray(profiles, dtype=float)
    if y.ndim != 2 or y.shape[1] != chi.size:
        raise InputError(
            f"profiles must have shape (n, {chi.size}) to match chi_deg; got {y.shape}"
        )
    valid = np.isfinite(y)
    if sigma is None:
        w = valid.astype(float)
    else:
        s = np.asarray(sigma, dtype=float)
        try:
            s = np.broadcast_to(s, y.shape)
        except ValueError:
            raise InputError(
                f"sigma must have the shape of profiles {y.shape}; got {s.shape}"
            ) from None
        valid &= np.isfinite(s) & (s > 0)
        with np.errstate(all="ignore"):
            w = np.where(valid, 1.0 / (s * s), 0.0)
    return chi, np.where(valid, y, 0.0), w, valid


def excluded_bins(chi: ArrayLike, ranges: Sequence[Sequence[float]] | None) -> BoolArray:
    """Bins whose centre lies in one of the chi ``ranges`` (degrees), to leave out of a fit.

    A range ``[lo, hi]`` is taken modulo 360 (``[170, 190]`` covers -180..-170 too).

    Parameters
    ----------
    chi : array_like, shape (n_chi,)
        Bin centres, degrees.
    ranges : sequence of (lo, hi), optional
        None or empty: no bin is excluded.

    Returns
    -------
    ndarray of bool, shape (n_chi,)

    Examples
    --------
    >>> excluded_bins(np.array([-175.0, 0.0, 175.0]), [[170, 190]]).tolist()
    [True, False, True]
    """
    chi = np.asarray(chi)
    out = np.zeros(chi.shape, dtype=bool)
    for lo, hi in ranges or ():
        out |= np.mod(chi - lo, 360.0) <= hi - lo
    return out


def _initial_params(
    model: ProfileModel, chi: FloatArray, y: FloatArray, valid: BoolArray, p0: ArrayLike | None
) -> FloatArray:
    n = y.shape[0]
    if p0 is None:
        return model.estimate(chi, np.where(valid, y, np.nan))
    p = np.asarray(p0, dtype=float)
    try:
        return np.array(np.broadcast_to(p, (n, model.n_par)))
    except ValueError:
        raise InputError(
            f"p0 must have shape ({model.n_par},) or ({n}, {model.n_par}) for model "
            f"{model.name!r}; got {p.shape}"
        ) from None


def _correlation(correlation: ArrayLike | sp.spmatrix | None, m: int) -> sp.csr_matrix | None:
    """The bins' correlation matrix as CSR (m, m), checked; None passes through."""
    if correlation is None:
        return None
    r = sp.csr_matrix(correlation, dtype=float)
    if r.shape != (m, m):
        raise InputError(
            f"correlation must have shape ({m}, {m}) (one row and column per chi bin); "
            f"got {r.shape}"
        )
    asymmetry = abs(r - r.T)
    if not np.isfinite(r.data).all() or (asymmetry.nnz and asymmetry.max() > 1e-6):
        raise InputError("correlation must be a finite symmetric matrix (the bins' correlation)")
    return r


# over 80 lines: a 66-line numpydoc docstring; the code is ~40 lines
def fit_profiles(
    chi_deg: ArrayLike,
    profiles: ArrayLike,
    sigma: ArrayLike | None = None,
    *,
    model: str | ProfileModel = "maier_saupe",
    max_iter: int = 100,
    absolute_sigma: bool = True,
    p0: ArrayLike | None = None,
    isotropy_alpha: float | None = 1e-3,
    correlation: ArrayLike | sp.spmatrix | None = None,
) -> FitResult:
    """Fit many azimuthal profiles at once with a vectorised Levenberg--Marquardt.

    Parameters
    ----------
    chi_deg : array_like, shape (n_chi,)
        Azimuth of the bins in degrees (any convention, e.g. pyFAI's -180..180).
    profiles : array_like, shape (n, n_chi)
        Intensities; NaN marks a masked bin (excluded from that row).
    sigma : array_like, shape (n, n_chi), optional
        1-sigma uncertainties (weights ``1/sigma^2``); NaN or ``sigma <= 0`` excludes the bin.
        Without sigma all weights are 1 and the errors are scaled by the reduced chi^2 (as
        ``curve_fit`` does without sigma), whatever ``absolute_sigma`` says.
    model : str or ProfileModel
        A name in :data:`pyscatter.kernels.models.MODELS`.
    max_iter : int
        Maximum Levenberg--Marquardt steps per row.
    absolute_sigma : bool
        As in ``curve_fit``: True takes sigma as absolute; False scales the covariance by the
        reduced chi^2.
    p0 : array_like, shape (n_par,) or (n, n_par), optional
        Starting parameters; by default the model's ``estimate`` from the data.
    isotropy_alpha : float or None
        Significance level of the isotropy F-tests (see :class:`FitStatus`); None disables
        the detection (every converged row is fitted).
    correlation : array_like or scipy.sparse matrix, shape (n_chi, n_chi), optional
        Correlation of the bins' errors, shared by all rows (e.g. from pixel splitting, see
        :func:`pyscatter.processes.profiles_worker.chi_correlation`): ``Cov(y_a, y_b) =
        R_ab sigma_a sigma_b``. The fit is unchanged; the errors are the sandwich
        ``A^-1 J~^T R J~ A^-1`` (``A = J^T W J``, ``J~ = W^1/2 J``) instead of ``A^-1``. None
        (default): independent bins.

    Returns
    -------
    FitResult
        Canonical parameters, errors and a status per row.

    Raises
    ------
    InputError
        If the shapes of the inputs do not match or the model is unknown (never for the
        content of one row).

    Notes
    -----
    Rows whose 2-fold harmonic is not significant are ISOTROPIC before any iteration. The
    others are fitted in blocks of 256 rows: per iteration, the normal matrices ``J^T W J``
    of the active rows are scaled to unit diagonal and eigen-decomposed as one stack, which
    gives the damped step ``(A + lambda D)^-1 g`` of every row (``lambda`` per row, Nielsen's
    update), and the Gauss--Newton decrement ``g^T A^+ g``, the chi^2 a full step would still
    gain: a row stops when it is below ``(1e-6 sigma)^2``, i.e. within ~1e-6 standard
    deviation of the optimum. A singular matrix costs that row a FAILED status, never the
    block an exception (as ``np.linalg.solve`` would raise). Parameters at a bound (pseudo-
    Voigt ``eta`` in [0, 1]) are held there while the gradient pushes outwards. Maier--Saupe
    is fitted in regular coordinates (peak height above the minimum, kappa >= 0), see
    :mod:`pyscatter.kernels.models`; the covariance is transformed back exactly.

    A row's results are the same bits whether it is fitted alone or with any other rows, in
    any order (a live session fits one position a block, an offline run many): the sums over
    the bins are numpy's einsum dot products along each row, never a BLAS product whose
    rounding depends on the number of rows.

    Examples
    --------
    >>> import numpy as np
    >>> chi = np.arange(-179.5, 180.0, 1.0)
    >>> truth = np.array([[0.5, 8.0, 35.0, 2.0, 0.0]])
    >>> from pyscatter.kernels.models import MAIER_SAUPE
    >>> res = fit_profiles(chi, MAIER_SAUPE.func(chi, truth))
    >>> np.round(res["kappa"], 6).tolist(), FitStatus(res.status[0]).name
    ([8.0], 'OK')
    """
    mdl, chi, y, w, valid, corr, absolute, start = _inputs(
        chi_deg, profiles, sigma, model, max_iter, absolute_sigma, p0, isotropy_alpha, correlation
    )
    n, k = start.shape
    n_valid = valid.sum(axis=1)
    dof = (n_valid - k).astype(float)
    # the fit works in the model's regular coordinates when it has them
    space = mdl.fit_space or mdl
    q_start = mdl.to_fit(start) if mdl.to_fit is not None else start
    q = np.full((n, k), np.nan)
    chi2 = np.full(n, np.inf)
    converged = np.zeros(n, dtype=bool)
    n_iter = np.zeros(n, dtype=np.int32)
    cov = np.full((n, k, k), np.nan)
    bg = _background(chi, y, w, corr)
    rows_all = np.flatnonzero((dof >= 1) & ~bg.skip(isotropy_alpha, n_valid))
    for lo in range(0, rows_all.size, _BLOCK_ROWS):
        rows = rows_all[lo : lo + _BLOCK_ROWS]
        yb, wb, dofb = y[rows], w[rows], dof[rows]
        qb, c2, conv, it, jac = levenberg_marquardt(
            space, chi, yb, wb, q_start[rows], max_iter, absolute, dofb
        )
        q[rows], chi2[rows], converged[rows], n_iter[rows] = qb, c2, conv, it
        cov[rows] = covariance(jac, wb, c2, dofb, absolute, corr)
    params = q
    if mdl.from_fit is not None:
        params, cov_natural = mdl.from_fit(q, cov)
        cov = cov if cov_natural is None else cov_natural
    return _finalise(mdl, y, w, bg, params, cov, chi2, converged, n_iter, absolute, isotropy_alpha)


def _inputs(
    chi_deg, profiles, sigma, model, max_iter, absolute_sigma, p0, isotropy_alpha, correlation
):
    """The checked inputs both fits share: ``(model, chi, y, w, valid, correlation, absolute,
    start)`` (``absolute``: sigma given and taken as absolute; ``start`` (n, n_par))."""
    mdl = get_model(model)
    chi, y, w, valid = _prepare(chi_deg, profiles, sigma)
    _check_options(max_iter, isotropy_alpha)
    corr = _correlation(correlation, chi.size)
    absolute = bool(absolute_sigma) and sigma is not None
    start = _initial_params(mdl, chi, y, valid, p0)
    return mdl, chi, y, w, valid, corr, absolute, start


def _check_options(max_iter: int, isotropy_alpha: float | None) -> None:
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise InputError(f"max_iter must be a positive integer; got {max_iter!r}")
    if isotropy_alpha is not None and not 0.0 < isotropy_alpha < 1.0:
        raise InputError(f"isotropy_alpha must be in (0, 1) or None; got {isotropy_alpha!r}")


# ----------------------------------------------------------------------------------------------
# statuses, shared by the fast fit and the reference


#: Asymptotic efficiency of a median-based scale estimate (Gaussian noise): its variance is
#: that of a mean-square estimate from 37 % as many values
_MEDIAN_EFFICIENCY = 0.37


def _f_test_p(gain, extra, noise2, dof):
    """p-value of a chi^2 gain this large by chance, for ``extra`` more parameters.

    ``(gain / extra) / noise2 ~ F(extra, dof)`` with ``noise2`` the estimated noise variance
    (weighted units) on ``dof`` degrees of freedom. NaN (no gain, no noise) counts as chance.
    """
    from scipy import special  # F's survival function; scipy.stats costs ~0.8 s to import

    with np.errstate(all="ignore"):
        stat = (gain / extra) / noise2
        x = np.asarray(np.where(np.isfinite(stat), stat, 0.0), dtype=np.float64)
        # scipy.stats.f.sf(x, extra, dof) is fdtrc(extra, dof, x) for x > 0 and 1 at x <= 0
        # (its support): the same numbers, tested against it
        dfd = np.maximum(np.asarray(dof, dtype=np.float64), 1.0)
        p = np.where(x > 0, special.fdtrc(np.asarray(extra, dtype=np.float64), dfd, x), 1.0)
    p = np.where(np.isnan(stat), 1.0, p)
    p = np.where(np.isposinf(stat), 0.0, p)
    return np.where(dof >= 1, p, 1.0)


def _noise_variance(chi, resid, w):
    """Noise variance of weighted residuals from differences of consecutive valid bins.

    ``median |r_i - r_(i+1)| / (0.6745 sqrt 2)`` estimates the noise scale whatever smooth
    signal the residuals keep (a peak the model missed) and ignores the few bins a narrow peak
    or a spike occupies; the variance of an F-test denominator taken from the residuals of an
    inadequate model would not. Returns the variance and its effective degrees of freedom.
    A floor of 1e-12 of the rms weighted signal stands for rounding (noise-free data).
    """
    order = np.argsort(chi, kind="stable")
    valid = (w > 0)[:, order]
    rw = (np.sqrt(w) * resid)[:, order]
    # consecutive valid bins (masked ones squeezed out, keeping the chi order)
    packed = np.argsort(~valid, axis=1, kind="stable")
    rw = np.take_along_axis(rw, packed, axis=1)
    n_valid = valid.sum(axis=1)
    pair = np.arange(rw.shape[1] - 1)[None, :] < (n_valid - 1)[:, None]
    with np.errstate(invalid="ignore"):
        step = np.where(pair, np.abs(rw[:, 1:] - rw[:, :-1]), np.nan)
    step.sort(axis=1)  # NaN last
    n_pairs = pair.sum(axis=1)
    rows = np.arange(len(step))
    lo, hi = np.maximum(n_pairs - 1, 0) // 2, np.maximum(n_pairs, 1) // 2
    median = np.where(
        n_pairs > 0, 0.5 * (step[rows, lo] + step[rows, np.minimum(hi, step.shape[1] - 1)]), np.nan
    )
    scale2 = (median / (0.6745 * np.sqrt(2.0))) ** 2
    return scale2, _MEDIAN_EFFICIENCY * n_pairs


@dataclass(frozen=True)
class _Background:
    """Weighted flat + linear fit of every row, the noise and the 2-fold harmonic's p-value."""

    coef: FloatArray  # (n, 2) constant and slope per degree
    chi2: FloatArray  # (n,)
    cov: FloatArray  # (n, 2, 2) unscaled
    noise2: FloatArray  # (n,) noise scale of the harmonic's chi^2 gain (correlation included)
    bin_noise2: FloatArray  # (n,) noise variance of one weighted bin (for the misfit test)
    noise_dof: FloatArray  # (n,) its effective degrees of freedom
    p_harmonic: FloatArray  # (n,)
    worst_bin: FloatArray  # (n,) the largest single-bin chi^2 of the linear background

    def isotropic(self, alpha: float | None) -> BoolArray:
        if alpha is None:
            return np.zeros(self.chi2.shape, dtype=bool)
        return self.p_harmonic > alpha

    def skip(self, alpha: float | None, n_valid: NDArray[np.integer]) -> BoolArray:
        """Rows not worth a fit: no 2-fold harmonic and a background that fits within noise.

        A narrow peak pair on a low floor is weighted almost entirely by the floor bins, where
        the 2-fold harmonic finds nothing; its background misfit shows it (and the full model
        is then judged by :func:`_finalise`).
        """
        if alpha is None:
            return np.zeros(self.chi2.shape, dtype=bool)
        # chi2 of the background is a sum of per-bin variances (correlation does not enter)
        misfit = _f_test_p(self.chi2, np.maximum(n_valid - 2, 1), self.bin_noise2, self.noise_dof)
        return self.isotropic(alpha) & (misfit > alpha)


def _background(chi, y, w, correlation=None) -> _Background:
    linear = _harmonic_design(chi, ())
    coef, chi2_bg, cov = _weighted_lstsq(linear, y, w, with_cov=True)
    if correlation is not None:
        cov = sandwich(
            cast(FloatArray, cov), np.broadcast_to(linear, (len(y), *linear.shape)), w, correlation
        )
    design = _harmonic_design(chi, (2,))
    coef_h, chi2_h, _ = _weighted_lstsq(design, y, w)
    with np.errstate(all="ignore"):
        noise2, dof = _noise_variance(chi, y - combine(coef_h, design), w)
        bin_noise2 = noise2
        if correlation is not None:
            gain_factor, rho1 = _correlated_noise_factor(chi, design, w, correlation)
            bin_noise2 = noise2 / max(1.0 - rho1, 1e-3)  # differences see sigma^2 (1 - rho_1)
            noise2 = bin_noise2 * gain_factor
        floor = 1e-24 * bin_dot("nm,nm->n", w, y * y) / np.maximum((w > 0).sum(axis=1), 1)
        noise2, bin_noise2 = np.maximum(noise2, floor), np.maximum(bin_noise2, floor)
        p_harm = _f_test_p(chi2_bg - chi2_h, 2, noise2, dof)
    with np.errstate(all="ignore"):
        resid = np.where(w > 0, y - combine(coef, linear), 0.0)
        worst = np.nan_to_num(w * resid * resid, nan=0.0).max(axis=1)
    return _Background(coef, chi2_bg, cast(FloatArray, cov), noise2, bin_noise2, dof, p_harm, worst)


def _correlated_noise_factor(
    chi: FloatArray, design: FloatArray, w: FloatArray, r: sp.csr_matrix
) -> tuple[FloatArray, float]:
    """What turns the consecutive-difference noise of correlated bins into an F-test's scale.

    Differences of consecutive bins see ``sigma^2 (1 - rho_1)`` (``rho_1`` the median
    correlation of chi-neighbours), and the chi^2 gain of the 2-fold harmonic (its columns
    ``X``, weighted ``X~``, beyond the linear background) has the expectation
    ``sigma^2 tr((P_h - P_bg) R)`` instead of ``2 sigma^2`` (``P`` the projections on the
    columns): returns ``tr((P_h - P_bg) R) / 2`` per row, and ``rho_1``.
    """
    order = np.argsort(chi)
    rho1 = float(np.median(np.asarray(r[order[:-1], order[1:]]).ravel()))
    n, m = w.shape

    def trace(columns: FloatArray) -> FloatArray:
        k = columns.shape[1]
        x = np.ascontiguousarray(columns.T) * np.sqrt(w)[:, None, :]  # (n, k, m)
        rx = (r @ np.moveaxis(x, 2, 0).reshape(m, n * k)).reshape(m, n, k)
        meat = bin_dot("nim,njm->nij", x, np.moveaxis(rx, 0, 2))
        bread, _ = _scaled_pinv(gram(x, x))
        return np.trace(small_matmul(bread, meat), axis1=1, axis2=2)

    gain = trace(design) - trace(design[:, :2])
    return np.maximum(gain / 2.0, 1e-3), rho1


def _finalise(model, y, w, bg, params, cov, chi2, converged, n_iter, absolute, alpha):
    """Canonical form, isotropy tests, statuses and goodness of fit for a block of fits.

    A row is ISOTROPIC when the full model does not improve significantly on the linear
    background, or when its 2-fold harmonic is not significant and the model's gain rests on
    one bin alone (a zinger fitted as a spike: the gain is no larger than the background's
    worst bin). A narrow peak pair, which the harmonic misses on a low floor, keeps a
    significant gain beyond that bin.
    """
    n, k = params.shape
    n_valid = (w > 0).sum(axis=1)
    params, cov = model.normalise(params, cov)
    with np.errstate(invalid="ignore"):
        errors = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    # the flat + linear background model of every row (from _background)
    bg_coef, chi2_bg, bg_cov = bg.coef, bg.chi2, bg.cov
    too_few = n_valid <= k
    if alpha is None:
        isotropic = np.zeros(n, dtype=bool)
    else:
        with np.errstate(invalid="ignore"):
            p_full = _f_test_p(chi2_bg - chi2, k - 2, bg.noise2, bg.noise_dof)
            p_beyond_one_bin = _f_test_p(
                chi2_bg - chi2 - bg.worst_bin, k - 2, bg.noise2, bg.noise_dof
            )
        spike = bg.isotropic(alpha) & (p_beyond_one_bin > alpha)
        isotropic = ~too_few & (spike | (p_full > alpha))
    i_amp, i_str = model.index(model.amplitude), model.index(model.strength)
    i_ctr = model.index(model.center)
    finite = np.isfinite(params).all(axis=1) & np.isfinite(errors).all(axis=1)
    # the natural limit of a weak orientation (Maier--Saupe kappa -> 0): the director and the
    # strength are defined, the amplitude and the background may not be
    limit = (params[:, i_str] == 0) & np.isfinite(params[:, i_ctr]) & np.isfinite(errors[:, i_ctr])
    status = np.full(n, FitStatus.OK, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        weak = errors[:, i_str] * _WEAK_SIGMAS > np.abs(params[:, i_str])
        status[weak] = FitStatus.WEAK
        status[~(finite & (params[:, i_amp] > 0)) & ~limit] = FitStatus.FAILED
        status[limit] = FitStatus.WEAK
    status[~converged] = FitStatus.NOT_CONVERGED
    status[isotropic] = FitStatus.ISOTROPIC
    status[too_few] = FitStatus.TOO_FEW_POINTS
    bad = ~np.isin(status, (FitStatus.OK, FitStatus.WEAK, FitStatus.ISOTROPIC))
    params[bad] = np.nan
    errors[bad] = np.nan
    cov = np.where((bad | isotropic)[:, None, None], np.nan, cov)
    chi2 = np.where(bad, np.nan, chi2)
    # isotropic rows: the background fit and a zero peak
    n_par_eff = np.where(isotropic, 2, k)
    if isotropic.any():
        chi2 = np.where(isotropic, chi2_bg, chi2)
        with np.errstate(all="ignore"):
            bg_scale = np.ones(n) if absolute else chi2_bg / (n_valid - 2)
            bg_err = np.sqrt(np.diagonal(bg_cov, axis1=1, axis2=2) * bg_scale[:, None])
        for col, name in enumerate(model.background):
            i = model.index(name)
            params[isotropic, i] = bg_coef[isotropic, col]
            errors[isotropic, i] = bg_err[isotropic, col]
        for name, value in model.isotropic.items():
            i = model.index(name)
            params[isotropic, i] = value
            errors[isotropic, i] = np.nan
    with np.errstate(all="ignore"):
        wsum = w.sum(axis=1)
        mean = bin_dot("nm,nm->n", w, y) / wsum
        total = bin_dot("nm,nm->n", w, (y - mean[:, None]) ** 2)
        r2 = 1.0 - chi2 / total
        reduced = chi2 / (n_valid - n_par_eff)
    return FitResult(
        params=params,
        errors=errors,
        r2=np.where(too_few, np.nan, r2),
        reduced_chi2=np.where(too_few, np.nan, reduced),
        status=status,
        n_iter=n_iter.astype(np.int32),
        param_names=model.param_names,
        covariance=cov,
    )


# ----------------------------------------------------------------------------------------------
# the slow, obvious twin


def fit_profiles_reference(
    chi_deg: ArrayLike,
    profiles: ArrayLike,
    sigma: ArrayLike | None = None,
    *,
    model: str | ProfileModel = "maier_saupe",
    max_iter: int = 100,
    absolute_sigma: bool = True,
    p0: ArrayLike | None = None,
    isotropy_alpha: float | None = 1e-3,
    correlation: ArrayLike | sp.spmatrix | None = None,
) -> FitResult:
    """Fit profiles one by one with :func:`scipy.optimize.curve_fit` (reference for tests).

    Same parameters, conventions and statuses as :func:`fit_profiles`. Each row starts from the
    same ``p0`` (the model's estimate by default), uses the analytic Jacobian, Levenberg--
    Marquardt without bounds (trust-region reflective when the model has bounds, e.g. ``eta``
    in [0, 1]) with tolerances 1e-12, and is put into canonical form afterwards.
    ``max_iter`` bounds the function evaluations to ``100 * max_iter``. With ``correlation``
    each row's covariance is ``P B P / s`` (``P`` curve_fit's, ``B = J~^T R J~`` from the
    Jacobian at the optimum, ``s`` the reduced chi^2 that scaled ``P``, or 1 if absolute),
    written out in dense matrices.
    """
    mdl, chi, y, w, valid, corr_sparse, absolute, start = _inputs(
        chi_deg, profiles, sigma, model, max_iter, absolute_sigma, p0, isotropy_alpha, correlation
    )
    corr = None if corr_sparse is None else corr_sparse.toarray()
    n, k = start.shape
    bg = _background(chi, y, w, corr_sparse)
    skip = bg.skip(isotropy_alpha, valid.sum(axis=1))
    lower, upper = mdl.bounds()
    bounded = bool(np.isfinite(lower).any() or np.isfinite(upper).any())
    params = np.full((n, k), np.nan)
    cov = np.full((n, k, k), np.nan)
    chi2 = np.full(n, np.inf)
    converged = np.zeros(n, dtype=bool)
    n_iter = np.zeros(n, dtype=np.int32)

    def func(x, *p):
        return mdl.func(x, np.asarray(p))

    def jac(x, *p):
        return mdl.jacobian(x, np.asarray(p))

    for i in range(n):
        use = valid[i]
        if use.sum() <= k or skip[i]:
            continue
        options = {"method": "trf", "bounds": (lower, upper)} if bounded else {"method": "lm"}
        fitted = _curve_fit(
            func,
            jac,
            chi[use],
            y[i, use],
            p0=np.clip(start[i], lower, upper),
            sigma=None if sigma is None else 1.0 / np.sqrt(w[i, use]),
            absolute_sigma=absolute,
            maxfev=100 * max_iter,
            **options,
        )
        if fitted is None:
            continue
        popt, pcov, info = fitted
        params[i] = popt
        chi2[i] = np.sum(w[i, use] * (y[i, use] - func(chi[use], *popt)) ** 2)
        cov[i] = pcov
        if corr is not None:
            jw = jac(chi[use], *popt) * np.sqrt(w[i, use])[:, None]
            scale = 1.0 if absolute else chi2[i] / (use.sum() - k)
            cov[i] = pcov @ (jw.T @ corr[np.ix_(use, use)] @ jw) @ pcov / scale
        converged[i] = True
        n_iter[i] = info.get("nfev", 0)
    return _finalise(mdl, y, w, bg, params, cov, chi2, converged, n_iter, absolute, isotropy_alpha)


def _curve_fit(func, jac, x, y, **options) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """:func:`scipy.optimize.curve_fit` to tolerances 1e-12 with the analytic Jacobian:
    ``(popt, pcov, infodict)``, or None where it fails; its warnings silenced."""
    from scipy import optimize  # ~0.2 s to import: only the reference fit needs it

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            popt, pcov, info, _, _ = optimize.curve_fit(
                func, x, y, jac=jac, full_output=True, ftol=1e-12, xtol=1e-12, gtol=1e-12, **options
            )
    except (RuntimeError, ValueError, np.linalg.LinAlgError):
        return None
    return popt, pcov, info
