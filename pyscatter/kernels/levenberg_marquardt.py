"""The batched Levenberg--Marquardt behind :func:`pyscatter.kernels.fitting.fit_profiles`.

Every function works on a stack of rows (a leading batch axis): the model evaluated with its
Jacobian (:func:`evaluate`), the normal equations ``J^T W J`` and ``J^T W r``
(:func:`normal_equations`), their damped and Gauss--Newton steps in scaled coordinates
(:func:`lm_systems`), the iteration with Nielsen's damping update (:func:`levenberg_marquardt`)
and the covariance at the optimum, ``curve_fit``'s ``(J^T W J)^+`` or the sandwich of errors
correlated between bins (:func:`covariance`, :func:`sandwich`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from pyscatter.kernels.models import ProfileModel, _scaled_pinv
from pyscatter.kernels.row_products import bin_dot, gram, small_matmul

__all__ = [
    "covariance",
    "evaluate",
    "levenberg_marquardt",
    "lm_systems",
    "normal_equations",
    "sandwich",
]

FloatArray = NDArray[np.float64]

#: Convergence: the remaining Gauss--Newton decrease of chi^2 is below (_TOL_SIGMA sigma)^2
_TOL_SIGMA = 1e-6
#: A row whose damping exceeds this cannot improve any more (rounding level)
_LAMBDA_MAX = 1e12
_LAMBDA_MIN = 1e-12


def evaluate(
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
        chi2 = bin_dot("nm,nm->n", w, resid * resid)
    if j is not None and not np.isfinite(j).all():
        j = np.where(np.isfinite(j), j, 0.0)
    return np.where(np.isfinite(chi2), chi2, np.inf), resid, j


def normal_equations(
    jac: FloatArray, w: FloatArray, resid: FloatArray | None
) -> tuple[FloatArray, FloatArray | None]:
    """``J^T W J`` (n, k, k) and, with residuals, ``J^T W r`` (n, k).

    Each row's sums are the same bits whatever the other rows of the block (no BLAS, see
    :func:`pyscatter.kernels.models.bin_dot`). The models' Jacobians are stored
    parameter-major (``jac`` a view of an (n, k, m) buffer), which needs no copy here.
    """
    jt = np.ascontiguousarray(np.swapaxes(jac, 1, 2))  # (n, k, m)
    jw = jt * w[:, None, :]
    a = gram(jt, jw)
    g = None if resid is None else bin_dot("nkm,nm->nk", jw, resid)
    return a, g


def lm_systems(
    a: FloatArray,
    g: FloatArray,
    p: FloatArray,
    lam: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Damped and Gauss--Newton steps of a stack of normal equations, in scaled coordinates.

    ``a`` (n, k, k) and ``g`` (n, k) are ``J^T W J`` and ``J^T W r`` at the parameters ``p``
    (n, k), ``lam`` (n,) the damping of each row and ``lower``, ``upper`` (k,) the bounds.

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
    sol = _solve_rows(systems, rhs)[:, :, 0]
    u, u_gn = sol[:n], sol[n:]
    decrement = np.where(bad, np.nan, np.sum(u_gn * gt, axis=1))
    predicted = np.sum(u * gt, axis=1) + lam * np.sum(u * u, axis=1)
    return d, u, decrement, predicted


def _solve_rows(systems: FloatArray, rhs: FloatArray) -> FloatArray:
    """``systems^-1 rhs`` matrix by matrix; the pseudo-inverse for the exactly singular ones.

    LAPACK solves each matrix of the stack on its own. When one is exactly singular (an LU
    pivot of 0, which ``slogdet``'s sign 0 tells from the same factorisation) only that row
    takes the pseudo-inverse, so no row's step depends on the others in its block.
    """
    try:
        return np.asarray(np.linalg.solve(systems, rhs), dtype=np.float64)
    except np.linalg.LinAlgError:
        pass
    singular = np.linalg.slogdet(systems)[0] == 0
    sol = np.empty(rhs.shape)
    pinv = np.linalg.pinv(systems[singular], hermitian=True)
    sol[singular] = small_matmul(pinv, rhs[singular])
    try:
        sol[~singular] = np.linalg.solve(systems[~singular], rhs[~singular])
    except np.linalg.LinAlgError:  # pragma: no cover - a pivot of 0 that slogdet missed
        for i in np.flatnonzero(~singular):
            try:
                sol[i] = np.linalg.solve(systems[i], rhs[i])
            except np.linalg.LinAlgError:
                sol[i] = small_matmul(np.linalg.pinv(systems[i], hermitian=True), rhs[i])
    return sol


def levenberg_marquardt(
    model: ProfileModel,
    chi: FloatArray,
    y: FloatArray,
    w: FloatArray,
    p0: FloatArray,
    max_iter: int,
    absolute_sigma: bool,
    dof: FloatArray,
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_], NDArray[np.int32], FloatArray]:
    """Levenberg--Marquardt (Nielsen's damping update) on a block of rows.

    Parameters
    ----------
    model : ProfileModel
        The model (in the coordinates the fit works in).
    chi : ndarray, shape (m,)
        Azimuth of the bins, degrees.
    y, w : ndarray, shape (n, m)
        Data (0 at excluded bins) and weights ``1/sigma^2`` (0 at excluded bins).
    p0 : ndarray, shape (n, k)
        Starting parameters.
    max_iter : int
        Steps per row.
    absolute_sigma : bool
        Whether the convergence threshold is in absolute sigma or scaled by chi^2/dof.
    dof : ndarray, shape (n,)
        Degrees of freedom of each row.

    Returns
    -------
    params, chi2, converged, n_iter, jacobian
        Shapes (n, k), (n,), (n,), (n,) and (n, m, k). Non-finite values (overflowing trial
        steps, empty rows) are handled explicitly, hence the silenced floating-point warnings.
    """
    with np.errstate(all="ignore"):
        return _lm_loop(model, chi, y, w, p0, max_iter, absolute_sigma, dof)


def _lm_loop(model, chi, y, w, p0, max_iter, absolute_sigma, dof):
    """The iterations of :func:`levenberg_marquardt` (its caller silences the warnings)."""
    n, k = p0.shape
    lower, upper = model.bounds()
    p = np.clip(p0, lower, upper)
    chi2, resid, jac = evaluate(model, chi, p, y, w, jac=True)
    assert jac is not None
    # the Jacobian kept parameter-major (n, k, m), the layout the normal equations want
    jt = np.ascontiguousarray(np.swapaxes(jac, 1, 2))
    lam = np.full(n, 1e-3)
    nu = np.full(n, 2.0)
    n_iter = np.zeros(n, dtype=np.int32)
    converged = np.zeros(n, dtype=bool)
    done = ~np.isfinite(chi2) | ~np.isfinite(p).all(axis=1)
    # rounding floor of chi2 differences, for noise-free data
    floor = (1e3 * np.finfo(float).eps) ** 2 * bin_dot("nm,nm->n", w, y * y)
    for it in range(max_iter + 1):
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        a, g = normal_equations(np.swapaxes(jt[act], 1, 2), w[act], resid[act])
        d, u, decrement, predicted = lm_systems(a, g, p[act], lam[act], lower, upper)
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
        chi2_t, resid_t, jac_t = evaluate(model, chi, trial, y[act], w[act], jac=fused)
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
            if jac_t is None:  # no joint value and Jacobian: only the accepted rows'
                jac_rows = evaluate(model, chi, p[rows], y[rows], w[rows], jac=True)[2]
                jt[rows] = np.swapaxes(jac_rows, 1, 2)
            else:  # swapped first: whole rows of the model's (n, k, m) buffer are gathered
                jt[rows] = np.swapaxes(jac_t, 1, 2)[accept]
        # a row that cannot improve any more is at the minimum if the decrement is small
        stuck = lam[act] > _LAMBDA_MAX
        if stuck.any():
            done[act[stuck]] = True
            converged[act[stuck]] = decrement[stuck] <= 1e-6 * scale2[stuck]
    return p, chi2, converged, n_iter, np.swapaxes(jt, 1, 2)


def sandwich(cov: FloatArray, jac: FloatArray, w: FloatArray, r: sp.csr_matrix) -> FloatArray:
    """``A^-1 (J~^T R J~) A^-1`` for errors correlated between bins (``J~ = W^1/2 J``).

    The least-squares fit weights the bins as if independent; with ``Cov(y) = S R S``
    (``S = diag(sigma)``) the parameters' covariance is this sandwich, not ``A^-1``.
    """
    n, m, k = jac.shape
    jt = np.swapaxes(jac, 1, 2) * np.sqrt(w)[:, None, :]  # (n, k, m), zero at excluded bins
    # R J~ for all rows at once: scipy's sparse product adds each output element's terms in
    # the order of R's entries, whatever the number of columns (rows x parameters)
    rj = (r @ np.moveaxis(jt, 2, 0).reshape(m, n * k)).reshape(m, n, k)
    meat = bin_dot("nim,njm->nij", jt, np.moveaxis(rj, 0, 2))
    with np.errstate(all="ignore"):
        return small_matmul(small_matmul(cov, meat), cov)


def covariance(
    jac: FloatArray,
    w: FloatArray,
    chi2: FloatArray,
    dof: FloatArray,
    absolute_sigma: bool,
    correlation: sp.csr_matrix | None = None,
) -> FloatArray:
    """Covariance like curve_fit: (J^T W J)^+ at the optimum, times chi2/dof unless absolute;
    the sandwich of :func:`sandwich` when the bins are correlated.

    ``jac`` is (n, m, k), ``w`` (n, m), ``chi2`` and ``dof`` (n,); returns (n, k, k), NaN
    for rows whose ``J^T W J`` is singular.
    """
    with np.errstate(all="ignore"):
        a, _ = normal_equations(jac, w, None)
    cov, full_rank = _scaled_pinv(a)
    if correlation is not None:
        cov = sandwich(cov, jac, w, correlation)
    cov[~full_rank] = np.nan  # a singular covariance: FAILED
    if not absolute_sigma:
        with np.errstate(all="ignore"):
            cov = cov * (chi2 / dof)[:, None, None]
    return cov
