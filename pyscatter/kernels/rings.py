"""Ring (and sector) matrices from pyFAI's CSR matrices, stacked; ring profiles from sub-bins.

Pure numerics (numpy, scipy.sparse) on pyFAI integrators passed in: no files. The workers
(:mod:`pyscatter.processes.profiles_worker`, :mod:`pyscatter.processes.sectors_worker`) read
the masks, dark, flat and frames and call these. Everything taken from pyFAI is gathered as
plain arrays (:func:`ring_inputs`, :func:`geometry_inputs`), which the workers remember in the
matrix cache; :meth:`RingProfiles.from_inputs` and :func:`stacked_from_inputs` build from
them without pyFAI (the constructors that take an integrator build through them too, so both
give the same bits).

Every ring (or sector) is one pyFAI CSR integration: a 2-D one with ``n_radial`` radial
sub-bins of equal width across [q − w, q + w] and ``npt_azim`` azimuthal bins for a ring, a
1-D one restricted to an azimuth range for a sector. Their sparse matrices are stacked into
one, wrapped in one :class:`~pyscatter.kernels.integrate.BatchIntegrator`, so a block of
frames is read and converted once for all rings; each row of the stacked matrix is summed
exactly as alone, so the result is the same as one ``BatchIntegrator`` per ring, bit for bit.

Radial sub-bins (rings). The rows of the stacked ring matrix are (ring, sub-bin k, chi). The
profile of a ring is the mean over its sub-bins of the sub-bin means, with fixed equal
weights::

    I(chi)      = (1/n) Σ_k S_k(chi) / N_k(chi)
    sigma(chi)² = (Σ_k V_k / N_k² + 2 Σ_{k<l} C_kl / (N_k N_l)) / n²

(S, V, N: pyFAI's signal, variance and normalization sums; C_kl the covariance of S_k and S_l
from the pixels that pixel splitting shares between them, see :func:`shared_pixel_matrices`;
taken as 0 for the "azimuthal" error model), defined only where every sub-bin is covered:
N_k(chi) ≥ ``min_coverage`` × E_k, E_k the median over chi of the sub-bin's normalization
with the static mask (over the chi bins it reaches at all: the unobstructed expectation).
Other chi bins are NaN. A single bin over the window averages whatever pixels
remain: where a module gap, a beamstop edge or the frame edge takes away part of the window
at some chi, the ring's steep radial profile biases that bin. Each narrow sub-bin is nearly
flat radially, and its weight does not depend on chi, so a partially covered ring is either
unbiased or NaN. See :func:`combine_sub_bins`.

Guard bins. With a ``radial_range``, pyFAI's CSR matrices (pyFAI 2026.9, "no" and "bbox"
splitting) put the pixels lying up to one bin *below* the range into the first bin (a
truncation towards zero of a negative bin index), and bbox splitting folds the parts of pixels
beyond the upper edge into the last bin. With a single radial bin over [q − w, q + w] the
"ring" would take pixels down to q − 3w (with n sub-bins, the first one those down to
q − w − 2w/n). Every radial range here is therefore integrated with one extra bin of the same
width on each side, and those two guard bins are dropped: the bins kept hold exactly the
pixels (or pixel fractions) inside them, also when they are narrower than a pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from pyscatter.errors import InputError
from pyscatter.kernels.csr import csr_arrays, csr_from_arrays, pixel_inputs, pyfai_csr
from pyscatter.kernels.integrate import (
    SPLITTINGS,
    BatchIntegrator,
    IntegrationResult,
    pixel_keywords,
)


def csr_method(method: Any, dim: int) -> tuple[str, str, str]:
    """The Cython CSR method of pyFAI matching ``method`` (split, "csr", "cython")."""
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator  # noqa: F401  (method registry)
    from pyFAI.method_registry import IntegrationMethod

    chosen = IntegrationMethod.select_one_available(tuple(method), dim=dim, degradable=False)
    if chosen is None or chosen.algo_lower != "csr" or chosen.split_lower not in SPLITTINGS:
        raise InputError(
            f"unsupported method {tuple(method)!r}; expected a {dim}-D CSR method with splitting "
            f"one of {', '.join(SPLITTINGS)}, e.g. ('bbox', 'csr', 'cython')"
        )
    return chosen.split_lower, "csr", "cython"


def pyfai_engine(
    ai: Any,
    shape: tuple[int, int],
    *,
    npt: int,
    unit: str,
    method: tuple[str, str, str],
    mask: np.ndarray | None,
    radial_range: tuple[float, float] | None,
    azimuth_range: tuple[float, float] | None = None,
    npt_azim: int | None = None,
) -> tuple[Any, Any]:
    """Let pyFAI build its Cython CSR engine for one integration (as ``from_pyfai`` does).

    Returns pyFAI's result on a blank frame and the engine (its matrix and ranges).
    """
    from pyFAI.method_registry import IntegrationMethod

    probe = np.zeros(shape, dtype=np.float32)
    options = dict(
        unit=unit,
        method=method,
        mask=mask,
        radial_range=radial_range,
        azimuth_range=azimuth_range,
        correctSolidAngle=False,
    )
    if npt_azim is None:
        dim, res = 1, ai.integrate1d_ng(probe, int(npt), **options)
    else:
        dim, res = 2, ai.integrate2d_ng(probe, int(npt), int(npt_azim), **options)
    key = IntegrationMethod.select_method(dim, method[0], "csr", "cython")[0]
    return res, ai.engines[key].engine


def pyfai_matrix(
    ai: Any, shape: tuple[int, int], **options: Any
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray | None, str]:
    """pyFAI's CSR matrix (pixels → bins) of one integration, as ``from_pyfai`` takes it.

    ``options``: the keywords of :func:`pyfai_engine`. Returns (matrix float32 (n_bins, n_pix),
    radial centres, azimuthal centres or None, unit). For 2-D the rows are
    ``i_q * npt_azim + i_chi``. Loaded from the matrix cache when it holds it
    (:func:`~pyscatter.kernels.csr.pyfai_csr`: the same arrays as pyFAI's, bit for bit).
    """
    npt_azim = options.get("npt_azim")
    geometry = dict(
        unit=options["unit"],
        method=tuple(options["method"]),
        mask=options.get("mask"),
        radial_range=options.get("radial_range"),
        azimuth_range=options.get("azimuth_range"),
        correctSolidAngle=False,
    )
    matrix, csr = pyfai_csr(ai, shape, int(options["npt"]), npt_azim, geometry)
    radial = np.asarray(csr["radial"], dtype=np.float64)
    azimuthal = None if npt_azim is None else np.asarray(csr["azimuthal"], dtype=np.float64)
    return matrix, radial, azimuthal, str(csr["unit"])


def guarded_matrix(
    ai: Any,
    shape: tuple[int, int],
    *,
    npt: int,
    radial_range: tuple[float, float],
    npt_azim: int | None = None,
    **options: Any,
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray | None, str]:
    """:func:`pyfai_matrix` over ``radial_range`` without pyFAI's edge effects (guard bins).

    Integrates ``npt + 2`` bins over the range widened by one bin on each side and keeps the
    ``npt`` inner ones (see the module docstring). ``options``: the other keywords of
    :func:`pyfai_engine`. Same returns as :func:`pyfai_matrix`.
    """
    lo, hi = float(radial_range[0]), float(radial_range[1])
    step = (hi - lo) / int(npt)
    matrix, radial, azimuthal, unit_name = pyfai_matrix(
        ai,
        shape,
        npt=int(npt) + 2,
        radial_range=(lo - step, hi + step),
        npt_azim=npt_azim,
        **options,
    )
    n_azim = 1 if npt_azim is None else int(npt_azim)
    inner = matrix[n_azim : (int(npt) + 1) * n_azim]  # rows i_q * n_azim + i_chi
    return sp.csr_matrix(inner), radial[1:-1].copy(), azimuthal, unit_name


def stacked_integrator(
    ai: Any,
    shape: tuple[int, int],
    matrix: sp.csr_matrix,
    *,
    radial: np.ndarray,
    azimuthal: np.ndarray,
    unit: str,
    mask: np.ndarray | None,
    params: dict[str, Any],
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
    dim: int = 1,
) -> BatchIntegrator:
    """A BatchIntegrator over a stacked matrix, with ``from_pyfai``'s corrections.

    The corrections are those recorded in ``params`` (``dummy``, ``delta_dummy``,
    ``correct_solid_angle``, ``polarization_factor``, ``error_model``) with the ``dark`` and
    ``flat`` images (default: the detector's). With a dark and the Poisson model, a 2-D
    (``dim=2``) integration adds max(dark, 0) to each pixel's variance, as pyFAI's
    ``integrate2d_ng`` (and ``BatchIntegrator.from_pyfai``) does.
    Rows are ``i_radial * len(azimuthal) + i_azimuthal``; empty bins come out NaN.
    (:func:`stacked_from_inputs` of the geometry's :func:`geometry_inputs`.)
    """
    return stacked_from_inputs(
        geometry_inputs(ai, shape, params),
        shape,
        matrix,
        radial=radial,
        azimuthal=azimuthal,
        unit=unit,
        mask=mask,
        params=params,
        dark=dark,
        flat=flat,
        dim=dim,
    )


def geometry_inputs(ai: Any, shape: tuple[int, int], params: dict[str, Any]) -> dict[str, Any]:
    """What :func:`stacked_integrator` takes from pyFAI besides the matrix: the per-pixel
    arrays of :func:`~pyscatter.kernels.csr.pixel_inputs` for the corrections of ``params``."""
    return pixel_inputs(
        ai,
        shape,
        correct_solid_angle=bool(params["correct_solid_angle"]),
        polarization_factor=params["polarization_factor"],
    )


def stacked_from_inputs(
    inputs: dict[str, np.ndarray],
    shape: tuple[int, int],
    matrix: sp.csr_matrix,
    *,
    radial: np.ndarray,
    azimuthal: np.ndarray,
    unit: str,
    mask: np.ndarray | None,
    params: dict[str, Any],
    dark: np.ndarray | None = None,
    flat: np.ndarray | None = None,
    dim: int = 1,
) -> BatchIntegrator:
    """:func:`stacked_integrator` from its :func:`geometry_inputs` (computed, or loaded from
    the matrix cache): no pyFAI call."""

    dummy, error_model = params["dummy"], params["error_model"]
    return BatchIntegrator(
        matrix,
        shape,
        radial=radial,
        unit=unit,
        azimuthal=azimuthal,
        mask=mask,
        dummy=dummy,
        delta_dummy=params["delta_dummy"],
        error_model=error_model,
        empty=float("nan"),
        **pixel_keywords(
            inputs,
            dummy=dummy,
            dark=dark,
            flat=flat,
            error_model=error_model,
            poisson_dark=dim == 2,
        ),
    )


def shared_pixel_matrices(
    matrix: sp.csr_matrix, n_rings: int, n_radial: int, n_chi: int
) -> list[sp.csr_matrix]:
    """sqrt(c_k,p · c_k+d,p): the pixels p that sub-bins k and k + d of a (ring, chi) share.

    Pixel splitting (bbox) puts a pixel wider than a sub-bin into neighbouring sub-bins, whose
    sums S_k are then correlated: Cov(S_k, S_l) = Σ_p c_k,p c_l,p var_p. The kernel's Poisson
    variance sum of a row with entries sqrt(c_k,p c_l,p) is that covariance. One matrix per
    distance d = 1, 2, … while some pixel is shared (a pixel's sub-bins are contiguous), each
    with the rows of ``matrix`` ((i_ring * n_radial + k) * n_chi + i_chi), empty where
    k + d ≥ n_radial.
    """
    csr = sp.csr_matrix(matrix)
    rows = np.arange(csr.shape[0]).reshape(n_rings, n_radial, n_chi)
    out = []
    for d in range(1, n_radial):
        lower = rows[:, : n_radial - d].reshape(-1)
        product = sp.csr_matrix(csr[lower].multiply(csr[lower + d * n_chi]))
        product.eliminate_zeros()
        if product.nnz == 0:
            break
        product.data = np.sqrt(product.data)
        place = sp.csr_matrix(
            (np.ones(lower.size, dtype=np.float32), (lower, np.arange(lower.size))),
            shape=(csr.shape[0], lower.size),
        )
        out.append(sp.csr_matrix(place @ product))
    return out


def combine_sub_bins(
    intensity: np.ndarray,
    sigma: np.ndarray | None,
    normalization: np.ndarray,
    expected: np.ndarray,
    min_coverage: float,
    shared: Sequence[np.ndarray] = (),
) -> tuple[np.ndarray, np.ndarray | None]:
    """Ring profiles from their radial sub-bins: the equal-weight mean of the sub-bin means.

    ``I = (1/n) Σ_k I_k`` over the ``n`` sub-bins of a ring, and its standard error

        sigma² = (Σ_k sigma_k² + 2 Σ_{k<l} C_kl / (N_k N_l)) / n²

    (C_kl the covariance of the sums S_k and S_l from shared pixels, ``shared``), at chi bins
    where every sub-bin is covered, ``N_k ≥ min_coverage · E_k`` (and not empty); NaN
    elsewhere. The weights depend neither on chi nor on the coverage, so a chi bin that part
    of the window is missing from is NaN, not biased.

    Parameters
    ----------
    intensity : ndarray, shape (n, n_ring, n_radial, n_chi)
        Mean of each sub-bin (S_k / N_k), NaN where empty.
    sigma : ndarray, same shape, or None
        Standard error of each sub-bin mean, sqrt(V_k) / N_k.
    normalization : ndarray, same shape
        N_k, the normalization sum (coverage) of each sub-bin in each frame.
    expected : ndarray, shape (n_ring, n_radial)
        E_k, the unobstructed normalization of each sub-bin.
    min_coverage : float
        Fraction of E_k in [0, 1] below which a sub-bin does not count as covered.
    shared : sequence of ndarray, shapes (n, n_ring, n_radial − d, n_chi) for d = 1, 2, …
        C_k,k+d; none (sub-bins sharing no pixel) by default.

    Returns
    -------
    intensity, sigma : ndarray, shape (n, n_ring, n_chi), float32
        The ring profiles and their standard errors (sigma None when ``sigma`` is None).
    """
    n_radial = intensity.shape[2]
    covered = np.isfinite(intensity) & (
        normalization >= float(min_coverage) * expected[None, :, :, None]
    )
    complete = covered.all(axis=2)
    out_i = np.where(complete, intensity.sum(axis=2) / n_radial, np.nan).astype(np.float32)
    if sigma is None:
        return out_i, None
    if n_radial == 1:
        return out_i, np.where(complete, sigma[:, :, 0], np.nan).astype(np.float32)
    total = np.square(sigma).sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):  # empty sub-bins: NaN, not complete
        for d, covariance in enumerate(shared, start=1):
            pair = normalization[:, :, :-d] * normalization[:, :, d:]
            total += 2 * (covariance / pair).sum(axis=2)
    combined = np.sqrt(total) / n_radial
    return out_i, np.where(complete, combined, np.nan).astype(np.float32)


def chi_correlation(
    matrix: sp.csr_matrix, n_rings: int, n_radial: int, n_chi: int
) -> list[sp.csr_matrix]:
    """Correlation of the chi bins of each ring profile from the pixels they share.

    Pixel splitting puts a pixel wider (in chi) than a chi bin into neighbouring bins, so
    their means are correlated. A ring profile is linear in the pixels, ``I_a = Σ_p w_ap x_p``
    with ``w_ap = (1/n) Σ_k c_kap / N_ka`` (``c`` the entries of ``matrix``, ``N_ka = Σ_p
    c_kap`` the sub-bin's weight, k over the ``n`` radial sub-bins), so ``Cov(I_a, I_b) =
    Σ_p w_ap w_bp var_p``. With pixel variances equal over the few pixels of two neighbouring
    bins (a smooth ring: the variance changes little across a bin), the correlation is
    geometric: ``R_ab = Σ_p w_ap w_bp / sqrt(Σ_p w_ap² Σ_p w_bp²)``, and ``R_ab σ_a σ_b`` is
    the covariance of the measured profile with its propagated ``σ``.

    Parameters
    ----------
    matrix : scipy.sparse matrix, shape (n_rings * n_radial * n_chi, n_pix)
        Rows ``(i_ring * n_radial + k) * n_chi + i_chi``, as :func:`ring_matrix` stacks them.
    n_rings, n_radial, n_chi : int

    Returns
    -------
    list of scipy.sparse.csr_matrix, each (n_chi, n_chi)
        Per ring, symmetric with a unit diagonal (0 on the diagonal of a bin without pixels);
        banded, plus the corners that join chi = -180 and 180.
    """
    csr = sp.csr_matrix(matrix, dtype=np.float64)
    weight = np.asarray(csr.sum(axis=1)).ravel()
    inv = np.divide(1.0, weight, out=np.zeros_like(weight), where=weight > 0)
    scaled = sp.diags(inv) @ csr
    rows = np.arange(csr.shape[0]).reshape(n_rings, n_radial, n_chi)
    out = []
    for ring in range(n_rings):
        combine = sp.csr_matrix(
            (
                np.full(n_radial * n_chi, 1.0 / n_radial),
                (np.tile(np.arange(n_chi), n_radial), rows[ring].ravel()),
            ),
            shape=(n_chi, csr.shape[0]),
        )
        w = sp.csr_matrix(combine @ scaled)
        cov = sp.csr_matrix(w @ w.T)
        diag = cov.diagonal()
        scale = np.divide(1.0, np.sqrt(diag), out=np.zeros_like(diag), where=diag > 0)
        corr = sp.csr_matrix(sp.diags(scale) @ cov @ sp.diags(scale))
        corr.eliminate_zeros()
        out.append(corr)
    return out


def expected_normalization(static: np.ndarray) -> np.ndarray:
    """E_k: the median over chi of each sub-bin's static normalization, shape (n_ring, n_radial).

    ``static`` has shape (n_ring, n_radial, n_chi). The median is over the chi bins that the
    sub-bin reaches at all (N > 0), so a ring partly off the detector is measured against its
    visible arc; 0 for a sub-bin without any pixel.
    """
    out = np.zeros(static.shape[:2])
    for index in np.ndindex(*static.shape[:2]):
        reached = static[index][static[index] > 0]
        if reached.size:
            out[index] = np.median(reached)
    return out


def coverage_counts(
    static: np.ndarray, expected: np.ndarray, min_coverage: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per ring: the chi bins covered in every sub-bin, and the chi bins reached at all.

    ``static`` (n_ring, n_radial, n_chi) is the normalization with the static mask, ``expected``
    (n_ring, n_radial) E_k of :func:`expected_normalization`; a sub-bin is covered at a chi bin
    where its normalization is positive and at least ``min_coverage`` × E_k.
    """
    covered = (static > 0) & (static >= min_coverage * expected[:, :, None])
    return covered.all(axis=1).sum(axis=1), (static > 0).any(axis=1).sum(axis=1)


class RingProfiles:
    """The profiles of all rings of a parameter set: one stacked sub-bin integrator.

    ``integrate(frames)`` gives an :class:`~pyscatter.kernels.integrate.IntegrationResult`
    with ``intensity`` and ``sigma`` of shape (n, n_chi, n_ring), ``radial`` the ring centres
    and ``azimuthal`` the chi bin centres (degrees), like a BatchIntegrator whose radial bins
    are the rings.

    Parameters
    ----------
    ai : pyFAI.integrator.azimuthal.AzimuthalIntegrator
        The geometry.
    params : dict
        AzimuthalProfiles parameters (see :func:`ring_integrator`).
    mask : ndarray, shape (n_row, n_col), optional
        Non-zero = masked.
    dark, flat : ndarray, shape (n_row, n_col), optional
        Dark and flat images (default: the detector's).

    Attributes
    ----------
    integrator : BatchIntegrator
        Over the stacked sub-bin matrix (rows ``(i_ring * n_radial + k) * n_chi + i_chi``)
        followed, for the Poisson model, by the shared-pixel matrices of
        :func:`shared_pixel_matrices`.
    radial : ndarray, shape (n_ring,)
        Ring centres.
    azimuthal : ndarray, shape (n_chi,)
        Chi bin centres in degrees.
    sub_radial : ndarray, shape (n_ring, n_radial)
        Sub-bin centres.
    expected : ndarray, shape (n_ring, n_radial)
        E_k of :func:`combine_sub_bins`.
    complete_bins, reached_bins : ndarray of int, shape (n_ring,)
        Chi bins where every sub-bin is covered, and chi bins the ring reaches at all, with the
        static mask (:func:`coverage_counts`).
    min_coverage : float
    unit : str
    """

    def __init__(
        self,
        ai: Any,
        params: dict[str, Any],
        mask: np.ndarray | None,
        *,
        dark: np.ndarray | None = None,
        flat: np.ndarray | None = None,
    ) -> None:
        self._build(ring_inputs(ai, params, mask), params, mask, dark=dark, flat=flat)

    @classmethod
    def from_inputs(
        cls,
        inputs: dict[str, np.ndarray],
        params: dict[str, Any],
        mask: np.ndarray | None,
        *,
        dark: np.ndarray | None = None,
        flat: np.ndarray | None = None,
    ) -> RingProfiles:
        """The profiles of :func:`ring_inputs` (computed, or loaded from the matrix cache):
        no pyFAI call. The other parameters as for the class."""
        self = cls.__new__(cls)
        self._build(inputs, params, mask, dark=dark, flat=flat)
        return self

    def _build(
        self,
        inputs: dict[str, np.ndarray],
        params: dict[str, Any],
        mask: np.ndarray | None,
        *,
        dark: np.ndarray | None,
        flat: np.ndarray | None,
    ) -> None:
        matrix = csr_from_arrays(inputs)
        sub_radial = np.asarray(inputs["sub_radial"], dtype=np.float64)
        unit = str(inputs["unit"])
        self.radial = np.array([ring["q"] for ring in params["rings"]], dtype=np.float64)
        self.azimuthal = np.asarray(inputs["azimuthal"], dtype=np.float64)
        self.sub_radial = sub_radial
        self.min_coverage = float(params.get("min_coverage", 0.0))
        self.unit = unit
        self._cube = (self.radial.size, sub_radial.shape[1], self.azimuthal.size)
        shared = []
        if params["error_model"] == "poisson":
            shared = shared_pixel_matrices(matrix, *self._cube)
        self.n_shared = len(shared)
        stacked = sp.vstack([matrix, *shared], format="csr")
        self.integrator = stacked_from_inputs(
            inputs,
            recorded_shape(params),
            stacked,
            radial=np.arange(stacked.shape[0] // self.azimuthal.size, dtype=np.float64),
            azimuthal=self.azimuthal,
            unit=unit,
            mask=mask,
            params=params,
            dark=dark,
            flat=flat,
            dim=2,
        )
        static = self.integrator.static_normalization()[: matrix.shape[0]].reshape(self._cube)
        self.expected = expected_normalization(static)
        self.complete_bins, self.reached_bins = coverage_counts(
            static, self.expected, self.min_coverage
        )

    @property
    def n_bins(self) -> int:
        """Rows of the stacked matrix (sub-bins and shared-pixel rows)."""
        return int(self.integrator.n_bins)

    def integrate(self, frames: Any) -> IntegrationResult:
        """Profiles of a block of frames (see the class docstring)."""
        intensity, sigma, normalization, variance = self.integrator.sums(frames)
        n = intensity.shape[0]
        size = int(np.prod(self._cube))
        shape = (n, *self._cube)
        shared = []
        if variance is not None:
            for d in range(1, self.n_shared + 1):
                block = variance[:, d * size : (d + 1) * size].reshape(shape)
                shared.append(block[:, :, :-d])
        profile, profile_sigma = combine_sub_bins(
            intensity[:, :size].reshape(shape),
            None if sigma is None else sigma[:, :size].reshape(shape),
            normalization[:, :size].reshape(shape),
            self.expected,
            self.min_coverage,
            shared,
        )
        return IntegrationResult(
            radial=self.radial.copy(),
            azimuthal=self.azimuthal.copy(),
            intensity=np.ascontiguousarray(profile.transpose(0, 2, 1)),
            sigma=None
            if profile_sigma is None
            else np.ascontiguousarray(profile_sigma.transpose(0, 2, 1)),
            unit=self.unit,
        )


def ring_matrix(
    ai: Any, params: dict[str, Any], mask: np.ndarray | None
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, str]:
    """The stacked CSR matrix of all rings' radial sub-bins (guard bins dropped).

    Each ring [q_min, q_max] is ``params["n_radial"]`` equal sub-bins (1 when absent, the
    single bin of earlier versions). Returns the matrix with rows
    ``(i_ring * n_radial + k) * npt_azim + i_chi``, the sub-bin centres (n_ring, n_radial),
    the chi centres (degrees) and pyFAI's unit name.
    """
    method = csr_method(params["method"], 2)
    n_radial = int(params.get("n_radial", 1))
    pieces, centres, chi, unit = [], [], None, str(params["unit"])
    for ring in params["rings"]:
        matrix, radial, azimuthal, unit = guarded_matrix(
            ai,
            recorded_shape(params),
            npt=n_radial,
            npt_azim=params["npt_azim"],
            unit=params["unit"],
            method=method,
            mask=mask,
            radial_range=(ring["q_min"], ring["q_max"]),
            azimuth_range=(-180.0, 180.0),
        )
        pieces.append(matrix)
        centres.append(radial)
        chi = azimuthal
    assert chi is not None
    return sp.vstack(pieces, format="csr"), np.array(centres), chi, unit


def ring_inputs(ai: Any, params: dict[str, Any], mask: np.ndarray | None) -> dict[str, np.ndarray]:
    """Everything :class:`RingProfiles` takes from pyFAI, as plain arrays (what the matrix
    cache stores): the :func:`ring_matrix` (``data``, ``indices``, ``indptr``, ``n_pix``), the
    sub-bin centres ``sub_radial``, the chi centres ``azimuthal``, the ``unit`` and the
    :func:`geometry_inputs` of ``params``."""
    matrix, sub_radial, chi, unit = ring_matrix(ai, params, mask)
    return {
        **csr_arrays(matrix),
        "sub_radial": np.asarray(sub_radial, dtype=np.float64),
        "azimuthal": np.asarray(chi, dtype=np.float64),
        "unit": np.array(unit),
        **geometry_inputs(ai, recorded_shape(params), params),
    }


def ring_inputs_check(params: dict[str, Any]):
    """A check of stored :func:`ring_inputs` of ``params``: a CSR matrix over the frame's pixels
    with a row per (ring, sub-bin, chi), sub-bin and chi centres of those sizes, and per-pixel
    arrays of the frame's size."""
    shape = recorded_shape(params)
    n_pix = shape[0] * shape[1]
    cube = (len(params["rings"]), int(params.get("n_radial", 1)), int(params["npt_azim"]))
    return inputs_check(
        n_pix,
        lambda a: (
            a["sub_radial"].shape == cube[:2]
            and a["azimuthal"].shape == cube[2:]
            and a["indptr"].size == int(np.prod(cube)) + 1
        ),
    )


def inputs_check(n_pix: int, sizes: Any):
    """A check of stored stacked-integrator inputs over ``n_pix`` pixels: the CSR arrays, the
    per-pixel arrays (:func:`~pyscatter.kernels.csr.pixel_check`) and ``sizes(arrays)``, the
    caller's test of the bin counts."""
    from pyscatter.io import matrix_cache
    from pyscatter.kernels.csr import pixel_check

    csr, pixels = matrix_cache.csr_check(n_pix), pixel_check(n_pix)

    def check(arrays: dict[str, np.ndarray]) -> bool:
        needed = {"data", "indices", "indptr", "n_pix", "azimuthal", "unit"}
        if not needed <= set(arrays) or int(arrays["n_pix"]) != n_pix:
            return False
        return csr(arrays) and pixels(arrays) and bool(sizes(arrays))

    return check


def recorded_shape(params: dict[str, Any]) -> tuple[int, int]:
    """The ``frame_shape`` (n_row, n_col) recorded in ``params``, as ints."""
    return int(params["frame_shape"][0]), int(params["frame_shape"][1])


def pixel_extent(
    ai: Any, shape: tuple[int, int], unit: str, mask: np.ndarray | None
) -> tuple[float, float] | None:
    """(min, max) of the radial position (``unit``) of the unmasked pixel centres, or None when
    no unmasked pixel has a finite one. ``mask``: True = masked."""
    q = ai.array_from_unit(shape=shape, typ="center", unit=unit, scale=True)
    seen = q[~mask] if mask is not None else q.ravel()
    seen = seen[np.isfinite(seen)]
    if seen.size == 0:
        return None
    return float(seen.min()), float(seen.max())
