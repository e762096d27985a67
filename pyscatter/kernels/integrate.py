"""Batched azimuthal integration: pyFAI's sparse matrix applied to blocks of frames.

pyFAI stays the geometry and matrix engine: it builds its CSR matrix (pixels → bins) once per
geometry, mask and method. :class:`BatchIntegrator` takes that matrix and applies it to a whole
block of frames at once (``scipy.sparse`` CSC × pixel-major float32 block, converted piece by
piece so the block stays in cache), with the same pixel-wise pre-processing and the same sums
as pyFAI's Cython CSR engine (``CsrIntegrator.integrate_ng``)::

    signal        = Σ c·(raw − dark)                      valid pixels only
    normalization = Σ c·(flat·polarization·solid_angle)
    variance      = Σ c²·max(raw, 1)                      error_model="poisson"
    intensity     = signal / normalization
    sigma         = sqrt(variance) / normalization        (pyFAI's ``sem``)

A pixel is valid when it is not masked, its raw value is finite and not a dummy (within
``delta_dummy``), its flat is not a dummy and its normalization is finite and non-zero;
invalid pixels add nothing to any sum. Bins without valid pixels get pyFAI's ``empty`` value.
pyFAI's 2-D bbox/no CSR path adds ``max(dark, 0)`` to the Poisson variance (its 1-D path does
not); that is followed too. The "azimuthal" error model reproduces pyFAI's one-pass weighted
variance recurrence, which depends on the order of the pixels in each row of the matrix; it is
vectorised here over frames and rows with prefix sums, not approximated by a two-pass variance.

The signal is accumulated in float32 (pyFAI: float64), a relative difference of a few 1e-6
for bins of thousands of pixels; the normalization is exact (float64, computed once).

:func:`integrate_reference` is the slow, obvious twin: pyFAI called once per frame
(:mod:`pyscatter.kernels.integrate_reference`, with :class:`IntegrationResult`); the sums of
pixel pieces and pyFAI's azimuthal variance are in :mod:`pyscatter.kernels.integrate_sums`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from pyscatter.errors import InputError
from pyscatter.kernels.checks import check_frame_shape
from pyscatter.kernels.csr import pyfai_inputs
from pyscatter.kernels.integrate_reference import (
    ERROR_MODELS,
    SPLITTINGS,
    IntegrationResult,
    check_error_model,
    integrate_reference,
)
from pyscatter.kernels.integrate_sums import (
    BadPixels,
    accumulate,
    azimuthal_sums,
    chunk_pixels,
    dummy_invalid,
    may_be_invalid,
)

__all__ = [
    "ERROR_MODELS",
    "SPLITTINGS",
    "BatchIntegrator",
    "IntegrationResult",
    "integrate_reference",
    "pixel_keywords",
]


def _pixel_array(name: str, value: Any, n_pix: int) -> np.ndarray | None:
    """A per-pixel correction as a flat float32 array (pyFAI works in float32), or None."""
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.size != n_pix:
        raise InputError(f"{name} has {arr.size} pixels ({arr.shape}); expected {n_pix}")
    return np.ascontiguousarray(arr.reshape(-1), dtype=np.float32)


def pixel_keywords(
    inputs: dict[str, np.ndarray],
    *,
    dummy: float | None,
    dark: np.ndarray | None,
    flat: np.ndarray | None,
    error_model: str | None,
    poisson_dark: bool,
) -> dict[str, Any]:
    """The per-pixel keywords of :class:`BatchIntegrator` from pyFAI's per-pixel inputs as
    plain arrays (:func:`~pyscatter.kernels.csr.pixel_inputs`: empty = unused), stored or
    just computed: solid angle, polarization, flat and dark (the detector's unless given), the
    detector's dummy (unless a ``dummy`` is given) and, with ``poisson_dark`` (pyFAI's 2-D
    path), the Poisson variance offset max(dark, 0) of the given dark."""

    def array(name: str) -> np.ndarray | None:
        value = inputs[name]
        return value if value.size else None

    poisson_offset = None
    if error_model == "poisson" and poisson_dark and dark is not None:
        # integrate2d_ng: variance = max(data, 1) + max(dark, 0) with the dark as passed
        poisson_offset = np.maximum(np.asarray(dark, dtype=np.float32), np.float32(0))
    detector_dummy = None
    if dummy is None and inputs["detector_dummy"].size:
        value, delta = (float(v) for v in inputs["detector_dummy"])
        detector_dummy = (value, None if np.isnan(delta) else delta)
    return {
        "solid_angle": array("solid_angle"),
        "polarization": array("polarization"),
        "flat": array("detector_flat") if flat is None else flat,
        "dark": array("detector_dark") if dark is None else dark,
        "detector_dummy": detector_dummy,
        "poisson_offset": poisson_offset,
    }


class BatchIntegrator:
    """Built once per worker; applies pyFAI's sparse matrix to blocks of frames.

    Usually made with :meth:`from_pyfai`. The object only reads its own arrays while
    integrating and allocates its scratch per call, so one instance may serve several threads;
    it pickles (matrices and per-pixel arrays only, no pyFAI object), so it can be sent once to
    each worker process.

    Parameters
    ----------
    matrix : scipy.sparse matrix, shape (n_bins, n_row*n_col)
        pyFAI's CSR matrix (pixels → bins). For 2-D results the rows are ordered
        ``i_q * n_chi + i_chi``, as pyFAI's 2-D CSR engines order them.
    shape : (int, int)
        Frame shape (n_row, n_col).
    radial : ndarray, shape (n_q,)
        Radial bin centres in ``unit``.
    unit : str
        Radial unit name.
    azimuthal : ndarray, shape (n_chi,), optional
        Azimuthal bin centres in degrees; gives 2-D results.
    solid_angle, polarization, flat, dark : ndarray, shape (n_row, n_col), optional
        Per-pixel corrections; the normalization of a pixel is ``flat·polarization·solid_angle``
        (multiplied in float32 in pyFAI's order) and ``dark`` is subtracted from the raw value.
    mask : ndarray, shape (n_row, n_col), optional
        Non-zero for pixels to ignore (pyFAI's convention).
    dummy, delta_dummy : float, optional
        Raw value marking invalid pixels (dynamic mask) and its tolerance.
    detector_dummy : (float, float or None), optional
        pyFAI detector ``(dummy, delta_dummy)``, used when ``dummy`` is None and resolved for
        the dtype of each input like ``pyFAI.detectors.Detector.get_dummies``.
    error_model : {None, "poisson", "azimuthal"}
        How ``sigma`` is computed; None gives no sigma.
    poisson_offset : ndarray, shape (n_row, n_col), optional
        Added to the Poisson variance ``max(raw, 1)`` of each pixel. pyFAI's 2-D bbox/no CSR
        path computes its Poisson variance itself as ``max(raw, 1) + max(dark, 0)``, its
        1-D path as ``max(raw, 1)``; :meth:`from_pyfai` sets this to follow it.
    empty : float
        Value of bins without valid pixels (pyFAI's ``empty``, 0 by default).
    block_frames : int
        Frames integrated at once; longer inputs are processed in such blocks. The matrix is
        read once per block. Scratch memory: ``8 · n_bins · block_frames`` bytes of sums plus
        1–2 MiB of pixel pieces; the "azimuthal" model also holds the block as float32
        (``4 · n_pix · block_frames`` bytes) and ~40 MiB of temporaries.

    Examples
    --------
    >>> import numpy as np
    >>> from pyFAI.detectors import Detector
    >>> from pyFAI.integrator.azimuthal import AzimuthalIntegrator
    >>> ai = AzimuthalIntegrator(dist=0.1, poni1=0.005, poni2=0.005, wavelength=1e-10,
    ...                          detector=Detector(172e-6, 172e-6, max_shape=(64, 64)))
    >>> bi = BatchIntegrator.from_pyfai(ai, (64, 64), npt=50, error_model="poisson")
    >>> res = bi.integrate(np.full((3, 64, 64), 100, dtype=np.uint32))
    >>> res.intensity.shape, res.sigma.shape, res.unit
    ((3, 50), (3, 50), 'q_nm^-1')
    """

    def __init__(
        self,
        matrix: Any,
        shape: tuple[int, int],
        *,
        radial: np.ndarray,
        unit: str,
        azimuthal: np.ndarray | None = None,
        solid_angle: np.ndarray | None = None,
        polarization: np.ndarray | None = None,
        flat: np.ndarray | None = None,
        dark: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        dummy: float | None = None,
        delta_dummy: float | None = None,
        detector_dummy: tuple[float, float | None] | None = None,
        error_model: str | None = None,
        poisson_offset: np.ndarray | None = None,
        empty: float = 0.0,
        block_frames: int = 16,
    ) -> None:
        self.shape = check_frame_shape(shape)
        n_pix = self.shape[0] * self.shape[1]
        self.error_model = check_error_model(error_model)
        if int(block_frames) < 1:
            raise InputError(f"block_frames must be a positive integer; got {block_frames!r}")
        self.block_frames = int(block_frames)
        self.radial = np.asarray(radial, dtype=np.float64).copy()
        self.azimuthal = (
            None if azimuthal is None else np.asarray(azimuthal, dtype=np.float64).copy()
        )
        self.unit = str(unit)
        self.empty = float(empty)

        csr = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        n_bins = csr.shape[0]
        if csr.shape[1] != n_pix:
            raise InputError(
                f"matrix has {csr.shape[1]} columns; expected n_pix = {n_pix} for shape {self.shape}"
            )
        n_chi = 1 if self.azimuthal is None else self.azimuthal.size
        if n_bins != self.radial.size * n_chi:
            raise InputError(
                f"matrix has {n_bins} rows; expected {self.radial.size} radial × {n_chi} azimuthal bins"
            )
        self.n_bins = n_bins

        static_bad = self._set_corrections(
            n_pix, flat, polarization, solid_angle, dark, poisson_offset, mask
        )
        # Dummies: a user value, else the detector's (depends on the input dtype), else none.
        self._dummy = None if dummy is None else np.float32(dummy)
        self._delta_dummy = np.float32(0 if delta_dummy is None else delta_dummy)
        self._detector_dummy: tuple[float, float | None] | None = None
        if detector_dummy is not None:
            self._detector_dummy = (detector_dummy[0], detector_dummy[1])

        self._set_matrix(csr, static_bad, n_pix)

    def _set_corrections(
        self,
        n_pix: int,
        flat: np.ndarray | None,
        polarization: np.ndarray | None,
        solid_angle: np.ndarray | None,
        dark: np.ndarray | None,
        poisson_offset: np.ndarray | None,
        mask: np.ndarray | None,
    ) -> np.ndarray:
        """Per-pixel pre-processing, in float32 and in the order of pyFAI's preproc.

        Sets the normalization ``flat·polarization·solid_angle`` (0 for statically invalid
        pixels), the flat, the dark and the Poisson offset; returns the statically invalid
        pixels (masked, non-finite or zero normalization, non-finite dark), (n_pix,) bool.
        """
        norm = np.ones(n_pix, dtype=np.float32)
        self._flat = _pixel_array("flat", flat, n_pix)
        for corr in (
            self._flat,
            _pixel_array("polarization", polarization, n_pix),
            _pixel_array("solid_angle", solid_angle, n_pix),
        ):
            if corr is not None:
                norm *= corr
        self._dark = _pixel_array("dark", dark, n_pix)
        self._poisson_offset = _pixel_array("poisson_offset", poisson_offset, n_pix)
        if self.error_model != "poisson":
            self._poisson_offset = None
        with np.errstate(invalid="ignore"):
            static_bad = ~np.isfinite(norm) | (norm == 0)
        if self._dark is not None:
            static_bad |= ~np.isfinite(self._dark)
        if mask is not None:
            mask_arr = np.asarray(mask)
            if mask_arr.size != n_pix:
                raise InputError(
                    f"mask has {mask_arr.size} pixels ({mask_arr.shape}); expected {n_pix}"
                )
            static_bad |= mask_arr.reshape(-1) != 0
        norm[static_bad] = 0
        self._norm = norm
        return static_bad

    def _set_matrix(self, csr: sp.csr_matrix, static_bad: np.ndarray, n_pix: int) -> None:
        """The matrix without statically invalid pixels and explicit zeros (pyFAI skips both),
        in both layouts, and the sums over it that do not depend on the frames."""
        csr.data[static_bad[csr.indices]] = 0
        csr.eliminate_zeros()  # keeps pyFAI's order of the entries within each row
        csc = csr.tocsc()
        self._csc = csc  # pixel-major: streams through the (n_pix, n_frames) block
        # c² for the Poisson variance, used with the index arrays of self._csc
        self._data2 = csc.data**2 if self.error_model == "poisson" else None
        self._csr = csr if self.error_model == "azimuthal" else None
        self._used = np.zeros(n_pix, dtype=bool)
        self._used[csr.indices] = True
        # unused pixels, sorted (see _raw_invalid)
        self._unused = np.flatnonzero(~self._used).astype(np.min_scalar_type(n_pix))
        if self._dark is not None:  # an unused pixel's dark (NaN, say) must not be tested
            self._dark = np.where(self._used, self._dark, np.float32(0))
        # Σ c·norm in float64 (as pyFAI sums), copying only the values of the matrix
        csc64 = sp.csc_matrix((csc.data.astype(np.float64), csc.indices, csc.indptr), csc.shape)
        self._norm_sum = csc64 @ self._norm.astype(np.float64)
        self._count = np.diff(csr.indptr).astype(np.float64)

    # ------------------------------------------------------------------ construction
    # over 80 lines: a 47-line docstring and one keyword per pyFAI option (code ~75 lines)
    @classmethod
    def from_pyfai(
        cls,
        ai: Any,
        shape: tuple[int, int],
        *,
        npt: int,
        unit: str = "q_nm^-1",
        npt_azim: int | None = None,
        method: Any = ("bbox", "csr", "cython"),
        mask: np.ndarray | None = None,
        dummy: float | None = None,
        delta_dummy: float | None = None,
        correct_solid_angle: bool = True,
        polarization_factor: float | None = None,
        dark: np.ndarray | None = None,
        flat: np.ndarray | None = None,
        error_model: str | None = None,
        radial_range: tuple[float, float] | None = None,
        azimuth_range: tuple[float, float] | None = None,
        block_frames: int = 16,
    ) -> BatchIntegrator:
        """Let pyFAI build its CSR matrix and corrections once (or load them from the matrix
        cache, :mod:`pyscatter.io.matrix_cache`), and wrap them.

        Parameters
        ----------
        ai : pyFAI.integrator.azimuthal.AzimuthalIntegrator
            The geometry. It is called once here (on a blank frame) so that pyFAI builds and
            caches its engine; do not share it with another thread meanwhile.
        shape : (int, int)
            Frame shape (n_row, n_col).
        npt : int
            Number of radial bins.
        unit : str
            pyFAI radial unit, e.g. ``"q_nm^-1"``, ``"q_A^-1"``, ``"2th_deg"``.
        npt_azim : int, optional
            Number of azimuthal bins; gives a 2-D (cake) result.
        method : tuple or pyFAI IntegrationMethod
            Splitting and algorithm, e.g. ``("bbox", "csr", "cython")`` or
            ``("no", "csr", "cython")``; the algorithm must be CSR (the implementation part
            is ignored: the matrix is always the one of pyFAI's Cython CSR engine).
        mask : ndarray, shape (n_row, n_col), optional
            Non-zero for masked pixels; None uses the detector mask, as pyFAI does.
        dummy, delta_dummy : float, optional
            Dynamic mask value and tolerance; None uses the detector's, as pyFAI does.
        correct_solid_angle : bool
            Divide by the pixel solid angle.
        polarization_factor : float, optional
            Between -1 and 1 (0 unpolarised, 0.99 typical of synchrotrons); None: no correction.
        dark, flat : ndarray, shape (n_row, n_col), optional
            Dark current to subtract and flat field to divide by; None uses the detector's.
        error_model : {None, "poisson", "azimuthal"}
            How sigma is computed.
        radial_range : (float, float), optional
            Radial range in ``unit``.
        azimuth_range : (float, float), optional
            Azimuthal range in degrees.
        block_frames : int
            See :class:`BatchIntegrator`.

        Returns
        -------
        BatchIntegrator

        Raises
        ------
        InputError
            For a non-CSR method, an unknown error model or arrays of the wrong size.
        """
        error_model = check_error_model(error_model)
        matrix, csr, inputs = pyfai_inputs(
            ai,
            shape,
            npt=npt,
            unit=unit,
            npt_azim=npt_azim,
            method=method,
            mask=mask,
            correct_solid_angle=correct_solid_angle,
            polarization_factor=polarization_factor,
            error_model=error_model,
            radial_range=radial_range,
            azimuth_range=azimuth_range,
        )
        return cls.from_inputs(
            matrix,
            csr,
            inputs,
            shape,
            dummy=dummy,
            delta_dummy=delta_dummy,
            dark=dark,
            flat=flat,
            error_model=error_model,
            block_frames=block_frames,
        )

    @classmethod
    def from_inputs(
        cls,
        matrix: sp.csr_matrix,
        csr: dict[str, Any],
        inputs: dict[str, np.ndarray],
        shape: tuple[int, int],
        *,
        dummy: float | None = None,
        delta_dummy: float | None = None,
        dark: np.ndarray | None = None,
        flat: np.ndarray | None = None,
        error_model: str | None = None,
        block_frames: int = 16,
    ) -> BatchIntegrator:
        """The integrator of :meth:`from_pyfai` from what :func:`pyfai_inputs` returned (or
        loaded from the matrix cache): no pyFAI call. The other parameters as in
        :meth:`from_pyfai`."""

        return cls(
            matrix,
            shape,
            radial=csr["radial"],
            unit=csr["unit"],
            azimuthal=csr["azimuthal"],
            mask=csr["cmask"],
            dummy=dummy,
            delta_dummy=delta_dummy,
            error_model=error_model,
            empty=csr["empty"],
            block_frames=block_frames,
            **pixel_keywords(
                inputs,
                dummy=dummy,
                dark=dark,
                flat=flat,
                error_model=error_model,
                poisson_dark=bool(inputs["poisson_dark"]),
            ),
        )

    def __repr__(self) -> str:
        kind = "1-D" if self.azimuthal is None else f"2-D ({self.azimuthal.size} chi)"
        return (
            f"BatchIntegrator({kind}, {self.radial.size} bins in {self.unit}, shape={self.shape}, "
            f"nnz={self._csc.nnz}, error_model={self.error_model!r})"
        )

    # ------------------------------------------------------------------ integration
    def integrate(self, frames: Any) -> IntegrationResult:
        """Integrate a block of frames.

        Parameters
        ----------
        frames : array_like, shape (n, n_row, n_col) or (n, n_row*n_col)
            Raw frames of any integer or float dtype (never modified).

        Returns
        -------
        IntegrationResult
            ``intensity`` (and ``sigma``) of shape (n, n_q), or (n, n_chi, n_q) for 2-D.

        Raises
        ------
        InputError
            When the frames do not have the integrator's frame shape or are not numeric.
        """
        flat_frames = self._as_frames(frames)
        n = flat_frames.shape[0]
        intensity = np.empty((n, self.n_bins), dtype=np.float32)
        sigma = None if self.error_model is None else np.empty((n, self.n_bins), dtype=np.float32)
        dummies = self._dummies(flat_frames.dtype)
        always_bad = self._flat_invalid(dummies)
        for start in range(0, n, self.block_frames):
            stop = min(n, start + self.block_frames)
            self._integrate_block(
                flat_frames[start:stop],
                dummies,
                always_bad,
                intensity[start:stop],
                None if sigma is None else sigma[start:stop],
            )
        return IntegrationResult(
            radial=self.radial.copy(),
            azimuthal=None if self.azimuthal is None else self.azimuthal.copy(),
            intensity=self._shape_output(intensity),
            sigma=None if sigma is None else self._shape_output(sigma),
            unit=self.unit,
        )

    def static_normalization(self) -> np.ndarray:
        """N of every bin over the statically valid pixels (no frame's dummies), (n_bins,)."""
        return np.array(self._norm_sum, dtype=np.float64)

    def sums(
        self, frames: Any
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None]:
        """Mean, standard error, normalization and variance sums of every bin of a block.

        The normalization sum N = Σ c·flat·polarization·solid_angle over the pixels valid in a
        frame is a bin's coverage; the variance sum V is what sigma is made of. Both come from
        the same steps as :meth:`integrate`, in float64 and in matrix row order.

        Parameters
        ----------
        frames : array_like, shape (n, n_row, n_col) or (n, n_row*n_col)
            Raw frames.

        Returns
        -------
        intensity : ndarray, shape (n, n_bins), float64
            S / N per bin in matrix row order; NaN where no pixel is valid.
        sigma : ndarray, shape (n, n_bins), float64, or None
            sqrt(V) / N (None without an error model); NaN where no pixel is valid.
        normalization : ndarray, shape (n, n_bins), float64
            N; 0 where no pixel is valid.
        variance : ndarray, shape (n, n_bins), float64, or None
            V (Poisson: Σ c²·max(raw, 1)); 0 where no pixel is valid.
        """
        flat = self._as_frames(frames)
        n = flat.shape[0]
        intensity, normalization = np.empty((n, self.n_bins)), np.empty((n, self.n_bins))
        sigma = variance = None
        if self.error_model is not None:
            sigma, variance = np.empty((n, self.n_bins)), np.empty((n, self.n_bins))
        dummies = self._dummies(flat.dtype)
        always_bad = self._flat_invalid(dummies)
        for start in range(0, n, self.block_frames):
            rows = slice(start, min(n, start + self.block_frames))
            with np.errstate(divide="ignore", invalid="ignore"):
                signal, norm, var, valid = self._block_terms(flat[rows], dummies, always_bad)
                intensity[rows] = np.where(valid, signal / norm, np.nan).T
                normalization[rows] = np.where(valid, norm, 0.0).T
                if sigma is not None and variance is not None and var is not None:
                    sigma[rows] = np.where(valid, np.sqrt(var) / norm, np.nan).T
                    variance[rows] = np.where(valid, var, 0.0).T
        return intensity, sigma, normalization, variance

    def _as_frames(self, frames: Any) -> np.ndarray:
        arr = np.asarray(frames)
        n_pix = self.shape[0] * self.shape[1]
        if not (
            np.issubdtype(arr.dtype, np.integer)
            or np.issubdtype(arr.dtype, np.floating)
            or arr.dtype == bool
        ):
            raise InputError(f"frames must be integers or floats; got dtype {arr.dtype}")
        if arr.ndim == 3 and arr.shape[1:] == self.shape:
            return arr.reshape(arr.shape[0], n_pix)
        if arr.ndim == 2 and arr.shape[1] == n_pix:
            return arr
        raise InputError(
            f"frames have shape {arr.shape}; expected (n, {self.shape[0]}, {self.shape[1]}) or (n, {n_pix})"
        )

    def _shape_output(self, out: np.ndarray) -> np.ndarray:
        if self.azimuthal is None:
            return out
        # pyFAI's 2-D rows are i_q * n_chi + i_chi; its results are (n_chi, n_q).
        cube = out.reshape(out.shape[0], self.radial.size, self.azimuthal.size)
        return np.ascontiguousarray(cube.transpose(0, 2, 1))

    def _dummies(self, dtype: np.dtype) -> tuple[bool, np.float32, np.float32]:
        """(check, dummy, delta) as pyFAI's integrate*_ng and preproc resolve them."""
        if self._dummy is not None:
            return True, self._dummy, self._delta_dummy
        if self._detector_dummy is not None:
            value, delta = self._detector_dummy
            # pyFAI.detectors.Detector.get_dummies
            actual = np.float32(np.dtype(dtype).type(np.int64(value)))
            actual_delta = np.finfo(np.float32).eps if delta is None else np.float32(delta)
            return True, actual, np.float32(actual_delta)
        fallback = np.float32(self.empty or 0.0)  # preproc without dummy: dummy = delta = empty
        return False, fallback, fallback

    def _flat_invalid(self, dummies: tuple[bool, np.float32, np.float32]) -> np.ndarray | None:
        """Pixels whose flat equals the dummy (pyFAI's preproc tests the flat with it)."""
        if self._flat is None:
            return None
        _, dummy, delta = dummies
        with np.errstate(invalid="ignore"):
            if delta == 0:
                bad = self._flat == dummy
            else:
                bad = ~(np.abs(self._flat - dummy) > delta)
        bad &= self._used
        return bad if bad.any() else None

    def _integrate_block(
        self,
        frames: np.ndarray,
        dummies: tuple[bool, np.float32, np.float32],
        always_bad: np.ndarray | None,
        out_i: np.ndarray,
        out_s: np.ndarray | None,
    ) -> None:
        """Integrate (nf, n_pix) frames into ``out_i`` (and ``out_s``), both (nf, n_bins)."""
        if frames.shape[0] == 0:
            return
        with np.errstate(divide="ignore", invalid="ignore"):
            signal, norm, variance, valid = self._block_terms(frames, dummies, always_bad)
            out_i[...] = np.where(valid, signal / norm, self.empty).T
            if out_s is not None and variance is not None:
                out_s[...] = np.where(valid, np.sqrt(variance) / norm, self.empty).T

    def _block_terms(
        self,
        frames: np.ndarray,
        dummies: tuple[bool, np.float32, np.float32],
        always_bad: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        """Signal S, normalization N, variance V (or None) and validity of every bin and
        frame of a block, each (n_bins, nf) (N broadcastable)."""
        if self.error_model == "azimuthal":
            block, bad = self._preprocess_block(frames, dummies, always_bad)
            assert self._csr is not None
            signal, norm, spread = azimuthal_sums(self._csr, self._csc, self._norm, block, bad)
            return signal, norm, spread, norm != 0
        signal, variance, bad = self._fused_products(frames, dummies, always_bad)
        norm, count = self._normalization(bad)
        return signal, norm, variance, count > 0

    def _fused_products(
        self,
        frames: np.ndarray,
        dummies: tuple[bool, np.float32, np.float32],
        always_bad: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]:
        """Σ c·s (and Σ c²·var) per bin and frame, converting the frames piece by piece.

        Each piece of pixels is converted to float32 into a small pixel-major buffer that stays
        in cache and is multiplied at once by the matching columns of the CSC matrix, so the
        block is never written to memory in full and the matrix is read once per block.
        """
        nf, n_pix = frames.shape
        chunk = chunk_pixels(nf)
        data2 = self._data2
        signal = np.zeros((self.n_bins, nf), dtype=np.float32)
        variance = None if data2 is None else np.zeros((self.n_bins, nf), dtype=np.float32)
        piece = np.empty((chunk, nf), dtype=np.float32)
        var_piece = None if data2 is None else np.empty((chunk, nf), dtype=np.float32)
        bad = BadPixels()
        indptr = self._csc.indptr
        for p0 in range(0, n_pix, chunk):
            p1 = min(n_pix, p0 + chunk)
            if indptr[p1] == indptr[p0]:
                continue  # no bin uses these pixels (e.g. masked gaps)
            x = piece[: p1 - p0]
            v = None if var_piece is None else var_piece[: p1 - p0]
            self._preprocess(frames, p0, p1, x, v, dummies, always_bad, bad)
            accumulate(self._csc, self._csc.data, p0, p1, x, signal)
            if v is not None and variance is not None and data2 is not None:
                accumulate(self._csc, data2, p0, p1, v, variance)
        return signal, variance, bad.result()

    def _preprocess_block(
        self,
        frames: np.ndarray,
        dummies: tuple[bool, np.float32, np.float32],
        always_bad: np.ndarray | None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """The whole block, pixel-major (n_pix, nf) float32, for the azimuthal pass."""
        nf, n_pix = frames.shape
        chunk = chunk_pixels(nf)
        block = np.zeros((n_pix, nf), dtype=np.float32)
        bad = BadPixels()
        for p0 in range(0, n_pix, chunk):
            p1 = min(n_pix, p0 + chunk)
            if self._used[p0:p1].any():
                self._preprocess(frames, p0, p1, block[p0:p1], None, dummies, always_bad, bad)
        return block, bad.result()

    def _preprocess(
        self,
        frames: np.ndarray,
        p0: int,
        p1: int,
        x: np.ndarray,
        v: np.ndarray | None,
        dummies: tuple[bool, np.float32, np.float32],
        always_bad: np.ndarray | None,
        bad: BadPixels,
    ) -> None:
        """pyFAI's preproc for pixels p0:p1 of all frames, into x (signal) and v (variance).

        x and v are (p1 - p0, nf) float32; invalid pixels get 0 in both and are recorded.
        Only used pixels are tested (:meth:`_raw_invalid`).
        """
        np.copyto(x.T, frames[:, p0:p1], casting="unsafe")  # reads each frame contiguously
        invalid = self._raw_invalid(x, p0, p1, frames.dtype, dummies, bad)
        if v is not None:
            np.maximum(x, np.float32(1), out=v)  # Poisson: raw counts, at least 1
            if self._poisson_offset is not None:
                v += self._poisson_offset[p0:p1, None]
        if self._dark is not None:
            x -= self._dark[p0:p1, None]
        if not (np.issubdtype(frames.dtype, np.integer) or frames.dtype == bool):
            if not (np.isfinite(x.max()) and np.isfinite(x.min())):  # NaN propagates
                nonfinite = ~np.isfinite(x)
                invalid = nonfinite if invalid is None else (invalid | nonfinite)
        if always_bad is not None:
            const = np.broadcast_to(always_bad[p0:p1, None], x.shape)
            invalid = const.copy() if invalid is None else (invalid | const)
        if invalid is None or not invalid.any():
            return
        invalid &= self._used[p0:p1, None]
        rows = np.flatnonzero(invalid.any(axis=1))
        if rows.size:
            x[invalid] = 0
            if v is not None:
                v[invalid] = 0
            bad.add(rows + p0, invalid[rows])

    def _raw_invalid(
        self,
        x: np.ndarray,
        p0: int,
        p1: int,
        dtype: np.dtype,
        dummies: tuple[bool, np.float32, np.float32],
        bad: BadPixels,
    ) -> np.ndarray | None:
        """The dummy test of the raw piece x (pixels p0:p1), or None when nothing matches.

        Only used pixels are tested: the unused ones (masked, out of range, zero
        normalization: no matrix entry, their values never read) take the values of a used
        one before the min/max pass that decides, so invalid values the mask already
        excludes neither trigger the test nor are tested. The copy is made when the pass
        finds a possible dummy or non-finite value, and before the pass for the rest of the
        block once a piece needed it (``bad.fill_unused``): Eiger frames hold their dummy at
        every gap.
        """
        check, dummy, delta = dummies
        floats = not (np.issubdtype(dtype, np.integer) or dtype == np.bool_)
        if not (check or floats):
            return None
        h0, h1 = np.searchsorted(self._unused, (p0, p1))
        if not (h1 > h0 and bad.fill_unused):
            if not may_be_invalid(x, dummy, delta, check, floats, one_side=True):
                return None
        if h1 > h0:
            x[self._unused[h0:h1] - p0] = x[int(np.argmax(self._used[p0:p1]))]
            bad.fill_unused = True
        if not may_be_invalid(x, dummy, delta, check, floats):
            return None
        return dummy_invalid(x, dummy, delta, scanned=True) if check else None

    def _normalization(
        self, bad: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Σ c·norm and the number of valid entries per bin and frame, shape (n_bins, nf)."""
        if bad is None:
            return self._norm_sum[:, None], self._count[:, None]
        pixels, masks = bad
        sub = self._csc[:, pixels].astype(np.float64)
        weights = masks * self._norm[pixels, None].astype(np.float64)
        lost_norm = sub @ weights
        sub.data[:] = 1
        lost_count = sub @ masks.astype(np.float64)
        return self._norm_sum[:, None] - lost_norm, self._count[:, None] - lost_count
