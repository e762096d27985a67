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
from dataclasses import dataclass
from enum import IntEnum
from typing import cast

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

from pyscatter.errors import InputError
from pyscatter.kernels.models import (
    ProfileModel,
    _harmonic_design,
    _scaled_pinv,
    _weighted_lstsq,
    get_model,
)

__all__ = ["FitResult", "FitStatus", "fit_profiles", "fit_profiles_reference"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Convergence: the remaining Gauss--Newton decrease of chi^2 is below (_TOL_SIGMA sigma)^2
_TOL_SIGMA = 1e-6
#: A row whose damping exceeds this cannot improve any more (rounding level)
_LAMBDA_MAX = 1e12
_LAMBDA_MIN = 1e-12
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


# ----------------------------------------------------------------------------------------------
# the batched Levenberg--Marquardt


def _evaluate(
    model: ProfileModel, chi: FloatArray, p: FloatArray, y: FloatArray, w: FloatArray, jac: bool
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """chi^2 (inf where not finite), residuals (0 at excluded bins) and, if asked, the
    Jacobian (non-finite entries zeroed) at ``p``, from one evaluation when the model can."""
    with np.errstate(all="ignore"):
        j: FloatArray | None = None
        if jac and model.value_and_jacobian is not None:
            f, j = model.value_and_jacobian(chi, p)
        else:
            f = model.func(chi, p)
            if jac:
                j = model.jacobian(chi, p)
        resid = np.where(w > 0, y - f, 0.0)
        chi2 = np.einsum("nm,nm->n", w, resid * resid)
    if j is not None and not np.isfinite(j).all():
        j = np.where(np.isfinite(j), j, 0.0)
    return np.where(np.isfinite(chi2), chi2, np.inf), resid, j


def _normal(
    jac: FloatArray, w: FloatArray, resid: FloatArray | None
) -> tuple[FloatArray, FloatArray | None]:
    """``J^T W J`` (n, k, k) and, with residuals, ``J^T W r`` (n, k)."""
    jw = np.swapaxes(jac * w[:, :, None], 1, 2)
    a = np.matmul(jw, jac)
    g = None if resid is None else np.matmul(jw, resid[:, :, None])[:, :, 0]
    return a, g


def _lm_systems(a, g, p, lam, lower, upper):
    """Damped and Gauss--Newton steps of a stack of normal equations, in scaled coordinates.

    The matrices are scaled to unit diagonal (``d = sqrt(diag A)``); a parameter at a bound
    whose gradient pushes outwards is held (its row and column replaced by the identity).
    Returns ``(d, u, decrement, predicted)``: the damped step is ``u / d``; ``decrement =
    g^T A^-1 g`` is the chi^2 a full Gauss--Newton step would still gain; ``predicted`` the
    gain the linear model promises for the damped step.
    """
    n, k = g.shape
    diag = np.diagonal(a, axis1=1, axis2=2)
    d = np.sqrt(np.where(np.isfinite(diag) & (diag > 0), diag, 1.0))
    # "at a bound" within 1e-10 of the parameter's scale 1/sqrt(A_ii): rounding of p + step
    # next to a bound must not unfix it
    fixed = ((p <= lower + 1e-10 / d) & (g < 0)) | ((p >= upper - 1e-10 / d) & (g > 0))
    at = a / (d[:, :, None] * d[:, None, :])
    gt = np.where(fixed, 0.0, g / d)
    if fixed.any():
        at[fixed[:, :, None] | fixed[:, None, :]] = 0.0
        rows, cols = np.nonzero(fixed)
        at[rows, cols, cols] = 1.0
    bad = ~(np.isfinite(at).all(axis=(1, 2)) & np.isfinite(gt).all(axis=1))
    at[bad], gt[bad] = np.eye(k), 0.0
    eye = np.eye(k)
    systems = np.concatenate([at + lam[:, None, None] * eye, at + _LAMBDA_MIN * eye])
    rhs = np.concatenate([gt, gt])[:, :, None]
    try:
        sol = np.linalg.solve(systems, rhs)[:, :, 0]
    except np.linalg.LinAlgError:  # an exactly singular row: pseudo-inverse for all
        sol = np.einsum("nij,nj->ni", np.linalg.pinv(systems, hermitian=True), rhs[:, :, 0])
    u, u_gn = sol[:n], sol[n:]
    decrement = np.where(bad, np.nan, np.sum(u_gn * gt, axis=1))
    predicted = np.sum(u * gt, axis=1) + lam * np.sum(u * u, axis=1)
    return d, u, decrement, predicted


def _lm(model, chi, y, w, p0, max_iter, absolute_sigma, dof):
    """Levenberg--Marquardt (Nielsen's damping update) on a block of rows.

    Returns ``(params, chi2, converged, n_iter, jacobian)``. Non-finite values (overflowing trial
    steps, empty rows) are handled explicitly, hence the silenced floating-point warnings.
    """
    with np.errstate(all="ignore"):
        return _lm_loop(model, chi, y, w, p0, max_iter, absolute_sigma, dof)


def _lm_loop(model, chi, y, w, p0, max_iter, absolute_sigma, dof):
    n, k = p0.shape
    lower, upper = model.bounds()
    p = np.clip(p0, lower, upper)
    chi2, resid, jac = _evaluate(model, chi, p, y, w, jac=True)
    lam = np.full(n, 1e-3)
    nu = np.full(n, 2.0)
    n_iter = np.zeros(n, dtype=np.int32)
    converged = np.zeros(n, dtype=bool)
    done = ~np.isfinite(chi2) | ~np.isfinite(p).all(axis=1)
    # rounding floor of chi2 differences, for noise-free data
    floor = (1e3 * np.finfo(float).eps) ** 2 * np.einsum("nm,nm->n", w, y * y)
    for it in range(max_iter + 1):
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        a, g = _normal(jac[act], w[act], resid[act])
        d, u, decrement, predicted = _lm_systems(a, g, p[act], lam[act], lower, upper)
        scale2 = np.ones(act.size) if absolute_sigma else chi2[act] / dof[act]
        # converged when the Gauss--Newton decrement (~ squared distance to the optimum in
        # sigma) is below (_TOL_SIGMA sigma)^2, or below the rounding floor of chi2
        bad = np.isnan(decrement)
        conv = bad | (decrement <= np.maximum(_TOL_SIGMA**2 * scale2, floor[act]))
        converged[act[conv & ~bad]] = True
        done[act[conv]] = True
        if it == max_iter or conv.all():
            break
        keep = ~conv
        act, d, u = act[keep], d[keep], u[keep]
        decrement, predicted, scale2 = decrement[keep], predicted[keep], scale2[keep]
        lam_a = lam[act]
        step = u / d
        trial = np.clip(p[act] + step, lower, upper)
        # land exactly on a bound that the step reaches up to rounding (kappa = 0 is a limit)
        near = 1e-10 / d
        trial = np.where(trial - lower < near, lower, np.where(upper - trial < near, upper, trial))
        # with a joint value-and-Jacobian the rejected rows' Jacobians are the only waste
        fused = model.value_and_jacobian is not None
        chi2_t, resid_t, jac_t = _evaluate(model, chi, trial, y[act], w[act], jac=fused)
        n_iter[act] += 1
        gain = chi2[act] - chi2_t
        accept = np.isfinite(chi2_t) & (gain > 0) & np.isfinite(trial).all(axis=1)
        with np.errstate(all="ignore"):
            rho = np.clip(np.where(predicted > 0, gain / predicted, 0.0), 0.0, 1.0)
        lam[act] = np.where(
            accept,
            np.maximum(lam_a * np.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3), _LAMBDA_MIN),
            lam_a * nu[act],
        )
        nu[act] = np.where(accept, 2.0, 2.0 * nu[act])
        rows = act[accept]
        if rows.size:
            p[rows] = trial[accept]
            chi2[rows] = chi2_t[accept]
            resid[rows] = resid_t[accept]
            if jac_t is not None:
                jac[rows] = jac_t[accept]
            else:
                jac[rows] = _evaluate(model, chi, p[rows], y[rows], w[rows], jac=True)[2]
        # a row that cannot improve any more is at the minimum if the decrement is small
        stuck = lam[act] > _LAMBDA_MAX
        if stuck.any():
            done[act[stuck]] = True
            converged[act[stuck]] = decrement[stuck] <= 1e-6 * scale2[stuck]
    return p, chi2, converged, n_iter, jac


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


def _sandwich(cov: FloatArray, jac: FloatArray, w: FloatArray, r: sp.csr_matrix) -> FloatArray:
    """``A^-1 (J~^T R J~) A^-1`` for errors correlated between bins (``J~ = W^1/2 J``).

    The least-squares fit weights the bins as if independent; with ``Cov(y) = S R S``
    (``S = diag(sigma)``) the parameters' covariance is this sandwich, not ``A^-1``.
    """
    n, m, k = jac.shape
    jt = jac * np.sqrt(w)[:, :, None]  # zero at excluded bins
    rj = (r @ np.moveaxis(jt, 1, 0).reshape(m, n * k)).reshape(m, n, k)
    meat = np.matmul(np.swapaxes(jt, 1, 2), np.moveaxis(rj, 0, 1))
    with np.errstate(all="ignore"):
        return np.matmul(np.matmul(cov, meat), cov)


def _covariance(jac, w, chi2, dof, absolute_sigma, correlation=None):
    """Covariance like curve_fit: (J^T W J)^+ at the optimum, times chi2/dof unless absolute;
    the sandwich of :func:`_sandwich` when the bins are correlated."""
    with np.errstate(all="ignore"):
        a, _ = _normal(jac, w, None)
    cov, full_rank = _scaled_pinv(a)
    if correlation is not None:
        cov = _sandwich(cov, jac, w, correlation)
    cov[~full_rank] = np.nan  # a singular covariance: FAILED
    if not absolute_sigma:
        with np.errstate(all="ignore"):
            cov = cov * (chi2 / dof)[:, None, None]
    return cov


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
    mdl = get_model(model)
    chi, y, w, valid = _prepare(chi_deg, profiles, sigma)
    _check_options(max_iter, isotropy_alpha)
    corr = _correlation(correlation, chi.size)
    absolute = bool(absolute_sigma) and sigma is not None
    start = _initial_params(mdl, chi, y, valid, p0)
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
        qb, c2, conv, it, jac = _lm(space, chi, yb, wb, q_start[rows], max_iter, absolute, dofb)
        q[rows], chi2[rows], converged[rows], n_iter[rows] = qb, c2, conv, it
        cov[rows] = _covariance(jac, wb, c2, dofb, absolute, corr)
    params = q
    if mdl.from_fit is not None:
        params, cov_natural = mdl.from_fit(q, cov)
        cov = cov if cov_natural is None else cov_natural
    return _finalise(mdl, y, w, bg, params, cov, chi2, converged, n_iter, absolute, isotropy_alpha)


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
    with np.errstate(all="ignore"):
        stat = (gain / extra) / noise2
        p = stats.f.sf(np.where(np.isfinite(stat), stat, 0.0), extra, np.maximum(dof, 1.0))
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
        cov = _sandwich(
            cast(FloatArray, cov), np.broadcast_to(linear, (len(y), *linear.shape)), w, correlation
        )
    design = _harmonic_design(chi, (2,))
    coef_h, chi2_h, _ = _weighted_lstsq(design, y, w)
    with np.errstate(all="ignore"):
        noise2, dof = _noise_variance(chi, y - coef_h @ design.T, w)
        bin_noise2 = noise2
        if correlation is not None:
            gain_factor, rho1 = _correlated_noise_factor(chi, design, w, correlation)
            bin_noise2 = noise2 / max(1.0 - rho1, 1e-3)  # differences see sigma^2 (1 - rho_1)
            noise2 = bin_noise2 * gain_factor
        floor = 1e-24 * np.einsum("nm,nm->n", w, y * y) / np.maximum((w > 0).sum(axis=1), 1)
        noise2, bin_noise2 = np.maximum(noise2, floor), np.maximum(bin_noise2, floor)
        p_harm = _f_test_p(chi2_bg - chi2_h, 2, noise2, dof)
    with np.errstate(all="ignore"):
        resid = np.where(w > 0, y - coef @ linear.T, 0.0)
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
        x = np.broadcast_to(columns, (n, *columns.shape)) * np.sqrt(w)[:, :, None]
        k = columns.shape[1]
        rx = (r @ np.moveaxis(x, 1, 0).reshape(m, n * k)).reshape(m, n, k)
        meat = np.matmul(np.swapaxes(x, 1, 2), np.moveaxis(rx, 0, 1))
        bread, _ = _scaled_pinv(np.matmul(np.swapaxes(x, 1, 2), x))
        return np.trace(np.matmul(bread, meat), axis1=1, axis2=2)

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
        mean = np.einsum("nm,nm->n", w, y) / wsum
        total = np.einsum("nm,nm->n", w, (y - mean[:, None]) ** 2)
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
    mdl = get_model(model)
    chi, y, w, valid = _prepare(chi_deg, profiles, sigma)
    _check_options(max_iter, isotropy_alpha)
    corr_sparse = _correlation(correlation, chi.size)
    corr = None if corr_sparse is None else corr_sparse.toarray()
    absolute = bool(absolute_sigma) and sigma is not None
    start = _initial_params(mdl, chi, y, valid, p0)
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
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", optimize.OptimizeWarning)
                popt, pcov, info, _, _ = optimize.curve_fit(
                    func,
                    chi[use],
                    y[i, use],
                    p0=np.clip(start[i], lower, upper),
                    sigma=None if sigma is None else 1.0 / np.sqrt(w[i, use]),
                    absolute_sigma=absolute,
                    jac=jac,
                    full_output=True,
                    ftol=1e-12,
                    xtol=1e-12,
                    gtol=1e-12,
                    maxfev=100 * max_iter,
                    **options,
                )
        except (RuntimeError, ValueError, np.linalg.LinAlgError):
            continue
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
