"""Azimuthal profiles I(chi) at rings of q, with sigma propagated from the pixels.

A ring is [q − width, q + width] in the q unit; it comes from a centre and a half-width, from
a q range, or from a reflection (hkl) of a crystal cell (lattice parameters or a CIF file,
d_hkl by pyFAI's ``Cell``, q = 2π/d). Each ring is integrated in ``n_radial`` radial sub-bins
of equal width (pyFAI's 2-D CSR integration over the ring with one guard bin on each side:
pyFAI's first bin also takes pixels from below its range, see
:mod:`pyscatter.kernels.rings`) and ``npt_azim`` chi bins over [-180°, 180°]. With
pyFAI's sums S_k, V_k, N_k of sub-bin k in a chi bin (Poisson variance max(raw, 1))::

    I(chi)      = (1/n) Σ_k S_k / N_k                the mean over q of the sub-bin means
    sigma(chi)² = (Σ_k V_k / N_k² + 2 Σ_{k<l} C_kl / (N_k N_l)) / n²

(C_kl = Σ c_k c_l max(raw, 1) over the pixels that bbox splitting shares between sub-bins k
and l) wherever every sub-bin is covered (N_k at least ``min_coverage`` of its median over
chi); chi bins the detector does not fully cover are NaN, not biased. All rings are one
stacked sparse matrix applied to a block of frames at once.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.usid import Dim
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.processes.detector import DetectorSetup, SetupHooks, split_options
from pyscatter.processes.integration import AzimuthalIntegration
from pyscatter.processes.options import DETECTOR_OPTIONS

log = logging.getLogger(__name__)

Q_UNITS = ("q_nm^-1", "q_A^-1")
UNIT_LABELS = {
    "q_nm^-1": "1/nm",
    "q_A^-1": "1/A",
    "2th_deg": "deg",
    "2th_rad": "rad",
    "r_mm": "mm",
}
"""Units stored with the radial values, as AzimuthalIntegration stores them."""
MAX_RADIAL = 100
"""Most radial sub-bins per ring (``n_radial``)."""


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _half_width(half_width: Any, width: Any) -> Any:
    """``half_width``, or its deprecated spelling ``width`` (with a warning)."""
    if width is None:
        return half_width
    if half_width is not None:
        raise InputError(
            "give half_width only (width is its deprecated spelling); got both "
            f"half_width={half_width!r} and width={width!r}"
        )
    log.warning("profiles: width is deprecated, write half_width (the same value: a half-width)")
    return width


class DetectorProcess(SetupHooks, ScatterProcess):
    """Shared by processes that integrate raw detector frames with a stacked pyFAI matrix.

    Takes the detector set-up (:class:`~pyscatter.processes.detector.DetectorSetup`, the
    options of :data:`~pyscatter.processes.options.DETECTOR_OPTIONS`, as
    :class:`~pyscatter.processes.integration.AzimuthalIntegration`; the error model defaults
    to ``"poisson"`` and may not be None) into the parameters and stores the extra mask, dark
    and flat in the results group. Subclasses set ``method_dim`` (1 or 2, the pyFAI CSR
    method's dimension) and implement :meth:`_make_function` (the block function of their
    worker module from the parameters and the combined mask, dark and flat).
    """

    method_dim = 2
    block_input_mb = 64
    options = DETECTOR_OPTIONS
    option_defaults: ClassVar[dict[str, Any]] = {"error_model": "poisson"}

    def __init__(self, h5_main: h5py.Dataset, params: dict[str, Any], **options: Any) -> None:
        detector, execution = split_options(options)
        setup = DetectorSetup.from_options(
            h5_main,
            dim=self.method_dim,
            sigma_required=True,
            **{**self.option_defaults, **detector},
        )
        setup.require_single_geometry(self.process_name)
        self.setup = setup
        self._shape = setup.frame_shape
        params = dict(params, **setup.record(legacy_stacked=True))
        params = self._resolve_parameters(params, setup.combined_mask(h5_main.file))
        super().__init__(h5_main, params, **execution)

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        return AzimuthalIntegration.default_source(h5)

    def _resolve_parameters(
        self, params: dict[str, Any], mask: np.ndarray | None
    ) -> dict[str, Any]:
        """Complete the parameters from the geometry and mask (e.g. a default range)."""
        return params

    def _local_function(self):
        """Built once in this process from the set-up's integrator, mask, dark and flat."""
        if getattr(self, "_local", None) is None:
            params = dict(self.parameters, source=self._source.name)
            setup = self.setup
            self._local = self._make_function(
                params,
                setup.combined_mask(self._source.file),
                dark=setup.arrays.get("dark"),
                flat=setup.arrays.get("flat"),
            )
        return self._local

    def _make_function(
        self,
        params: dict[str, Any],
        mask: np.ndarray | None,
        *,
        dark: np.ndarray | None,
        flat: np.ndarray | None,
    ):
        raise NotImplementedError

    def _integrator(self, params: dict[str, Any]):
        """The set-up's pyFAI integrator of the recorded geometry (built once, when first
        used: what the matrix cache holds needs none)."""
        return self.setup.integrator

    def _width(self) -> int:
        return sum(o.width for o in self._outputs())

    def _bytes_per_position(self) -> int:
        n_pix = self._shape[0] * self._shape[1]
        # the raw frame in the read buffer (two when reading ahead), float32 sums and both
        # outputs per bin
        return n_pix * self._source.dtype.itemsize * self._read_buffers() + self._width() * 16


class AzimuthalProfiles(DetectorProcess):
    """Azimuthal profiles I(chi) of every frame at one or more rings of q, with sigma.

    Rings are given in exactly one way: ``q`` with ``half_width``, ``q_range``, or ``hkl``
    with ``half_width`` and ``lattice`` or ``cif``.

    I(chi) is the mean of the corrected intensity over the ring's q window, taken uniformly in
    q: the ring is cut into ``n_radial`` sub-bins of equal width and I(chi) is the mean of
    their means S_k/N_k, with equal weights that depend neither on chi nor on the coverage.
    A chi bin counts only where every sub-bin is covered: its normalization sum N_k(chi) (the
    weight of its valid pixels) is at least ``min_coverage`` times the median of N_k over chi
    (the unobstructed expectation, over the chi bins the sub-bin reaches at all). Chi bins
    the detector does not fully cover are NaN, not biased, in ``Intensity`` and
    ``Intensity_Sigma`` (never 0), so fits ignore them.

    Why sub-bins: where a module gap, the beamstop or the frame edge removes part of the
    window at some chi, one bin over the window averages the pixels that remain, and the
    steep radial profile of the ring biases it (by up to 33 % on the rings of
    :func:`pyscatter.datasets.oriented_map`, which a fit takes for orientation); each narrow
    sub-bin is nearly flat radially, so the sub-bin mean keeps its definition there. Where
    the detector covers a chi bin fully, one bin (pyFAI's ``integrate2d_ng`` with a single
    radial bin, Σ signal / Σ normalization) differs from it only by the sampling by pixels and
    its weighting of q by the pixel density (∝ q for a detector normal to the beam): the
    sub-bin mean exceeds it by ≈ −I'·w²/(3q) for a ring of half-width w on a radial slope I'
    (4w²/3q² of I on a q⁻⁴ slope: 1.6 % at q = 0.45 nm⁻¹, w = 0.05 nm⁻¹; 0.04 % on the
    Gaussian rings of :mod:`pyscatter.datasets`), the same at every chi.

    The Poisson sigma(chi) is propagated from the pixels, sqrt(Σ_k sigma_k² + 2 Σ_{k<l}
    C_kl/(N_k N_l)) / n_radial, where C_kl = Σ c_k c_l max(raw, 1) over the pixels that pixel
    splitting shares between sub-bins k and l (with sub-bins narrower than a pixel,
    sqrt(Σ sigma_k²) / n_radial alone is ~1.6 times too small at 8 sub-bins).

    Parameters
    ----------
    h5_main : h5py.Dataset
        Image main dataset (positions × Row·Col), e.g. ``Raw_Data``.
    q : float or sequence of float, optional
        Ring centres in ``unit``.
    half_width : float or sequence of float, optional
        Half-width of each ring in ``unit`` (one value, or one per ring): the ring is
        [q − half_width, q + half_width]. (Recorded as each ring's ``width``.)
    width : float or sequence of float, optional
        Deprecated spelling of ``half_width`` (the same value: a half-width).
    q_range : sequence of (float, float), optional
        Rings as [lo, hi] in ``unit``.
    hkl : sequence of (int, int, int), optional
        Reflections; q = 2π / d_hkl of the cell.
    lattice : mapping, optional
        ``a``, ``b``, ``c`` (Å), ``alpha``, ``beta``, ``gamma`` (degrees); see
        :func:`pyscatter.geometry.cell_parameters`.
    cif : path, optional
        CIF file of the cell (read with ASE).
    npt_azim : int
        Chi bins over [-180°, 180°] (default 180: 2° bins).
    n_radial : int
        Radial sub-bins per ring, 1 to 100 (default 8). 1 gives the single bin of pyFAI
        (biased where the window is partly masked). With the default bbox splitting any
        sub-bin width works; with ``method=("no", ...)`` keep sub-bins several pixels wide
        in q, or whole-pixel sampling leaves sub-bins empty at many chi (NaN).
    min_coverage : float
        Fraction in [0, 1] (default 0.5) of a sub-bin's median normalization below which
        the chi bin is NaN. 0 keeps every chi bin whose sub-bins all hold a valid pixel.
    unit : {"q_nm^-1", "q_A^-1"}
    **options
        The detector set-up, as in
        :class:`~pyscatter.processes.integration.AzimuthalIntegration`
        (:data:`~pyscatter.processes.options.DETECTOR_OPTIONS`: ``poni``, ``mask``,
        ``use_file_mask``, ``dummy``, ``delta_dummy``, ``dark``, ``flat``,
        ``correct_solid_angle``, ``polarization_factor``, ``monitor``, ``transmission``,
        ``exposure_time``, ``error_model``, ``method``, ``allow_fallback``), except that
        ``error_model`` is ``"poisson"`` (variance max(raw, 1) per pixel, the default) or
        ``"azimuthal"`` (pyFAI's spread within each bin), and ``method`` must be a 2-D CSR
        method; then the execution options of
        :class:`~pyscatter.processes.base.ScatterProcess`.

    Notes
    -----
    Outputs ``Intensity`` and ``Intensity_Sigma`` have spectroscopic dims (ring, chi):
    ``ring`` holds the ring centres (in ``unit``), ``chi`` the bin centres (degrees, pyFAI's
    convention). The rings (q, width, q_min, q_max, hkl), the cell, ``n_radial`` and
    ``min_coverage`` are recorded in the parameters.

    With ``error_model="azimuthal"`` each sigma_k is pyFAI's spread of the pixels within the
    sub-bin, combined as sqrt(Σ sigma_k²) / n_radial: the pixels shared between sub-bins are
    not accounted for, and a sub-bin holding a single pixel has no spread. Use sub-bins of
    several pixels (a small ``n_radial``) with that model.
    """

    process_name = "AzimuthalProfiles"
    factory = "pyscatter.processes.profiles_worker:build"

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        q: float | Sequence[float] | None = None,
        half_width: float | Sequence[float] | None = None,
        q_range: Sequence[Sequence[float]] | None = None,
        hkl: Sequence[Sequence[int]] | None = None,
        lattice: Mapping[str, float] | None = None,
        cif: str | Path | None = None,
        npt_azim: int = 180,
        n_radial: int = 8,
        min_coverage: float = 0.5,
        unit: str = "q_nm^-1",
        width: float | Sequence[float] | None = None,
        **options: Any,
    ) -> None:
        from pyscatter.geometry import cell_parameters, ring_ranges

        if unit not in Q_UNITS:
            raise InputError(f"unsupported unit {unit!r}; expected one of {', '.join(Q_UNITS)}")
        if int(npt_azim) != npt_azim or int(npt_azim) < 1:
            raise InputError(f"npt_azim must be a positive integer; got {npt_azim!r}")
        if (
            isinstance(n_radial, bool)
            or not isinstance(n_radial, (int, np.integer))
            or not 1 <= n_radial <= MAX_RADIAL
        ):
            raise InputError(
                f"n_radial must be an integer from 1 to {MAX_RADIAL} (radial sub-bins per "
                f"ring); got {n_radial!r}"
            )
        if (
            isinstance(min_coverage, bool)
            or not isinstance(min_coverage, (int, float, np.number))
            or not 0 <= float(min_coverage) <= 1
        ):
            raise InputError(
                f"min_coverage must be a number in [0, 1] (a fraction of a sub-bin's median "
                f"normalization); got {min_coverage!r}"
            )
        half_width = _half_width(half_width, width)
        try:
            rings = ring_ranges(
                q=q, width=half_width, q_range=q_range, hkl=hkl, lattice=lattice, cif=cif, unit=unit
            )
        except InputError as err:  # the public name of the option is half_width
            raise InputError(re.sub(r"\bwidth\b", "half_width", str(err))) from None
        cell = cell_parameters(lattice, cif) if hkl is not None else None
        params = {
            "rings": rings,
            "lattice": cell,
            "cif": None if cif is None else str(cif),
            "cif_sha256": None if cif is None else _file_sha(Path(cif)),
            "npt_azim": int(npt_azim),
            "n_radial": int(n_radial),
            "min_coverage": float(min_coverage),
            "unit": unit,
        }
        super().__init__(h5_main, params, **options)

    def _resolve_parameters(
        self, params: dict[str, Any], mask: np.ndarray | None
    ) -> dict[str, Any]:
        """Refuse rings that lie outside the q range of the detector's unmasked pixels (that
        range is remembered in the matrix cache: no pyFAI when it holds it)."""
        from pyscatter.processes.profiles_worker import detector_extent

        unit = params["unit"]
        lo, hi = detector_extent(params, mask, lambda: self._integrator(params))
        for ring in params["rings"]:
            if ring["q_max"] < lo or ring["q_min"] > hi:
                what = f"hkl {tuple(ring['hkl'])} at " if ring.get("hkl") else ""
                raise InputError(
                    f"ring {what}q = {ring['q']:.6g} ([{ring['q_min']:.6g}, "
                    f"{ring['q_max']:.6g}] {UNIT_LABELS[unit]}) lies outside the q range the "
                    f"detector covers, {lo:.6g} to {hi:.6g} {UNIT_LABELS[unit]}: choose q "
                    "(or q_range, hkl) inside it"
                )
        return params

    def _make_function(self, params, mask, *, dark, flat):
        from pyscatter.processes.profiles_worker import make_function

        return make_function(params, mask, self.setup.built_integrator, dark=dark, flat=flat)

    def _outputs(self) -> list[Output]:
        if getattr(self, "_outputs_cache", None) is None:
            chi = self._local_function().azimuthal
            units = UNIT_LABELS[self.parameters["unit"]]
            centres = [ring["q"] for ring in self.parameters["rings"]]
            dims = (Dim("ring", units, np.array(centres)), Dim("chi", "deg", chi))
            self._outputs_cache = [
                Output("Intensity", "Intensity", "a.u.", dims),
                Output("Intensity_Sigma", "Intensity sigma", "a.u.", dims),
            ]
        return self._outputs_cache

    def _bytes_per_position(self) -> int:
        n_pix = self._shape[0] * self._shape[1]
        n_rows = int(self._local_function().n_bins)  # sub-bins and shared-pixel rows
        # the raw frame in the read buffer (two when reading ahead); per row the kernel's
        # float32 sums and the four float64 sums kept; the float64 combination and both float32
        # outputs per (ring, chi)
        raw = n_pix * self._source.dtype.itemsize * self._read_buffers()
        return raw + n_rows * 40 + self._width() * 40
