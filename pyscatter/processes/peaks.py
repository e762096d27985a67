"""Peak fitting in I(q) maps: position, width, area, shape of Bragg peaks at every position.

Each peak window holds one pseudo-Voigt (or Gaussian, or Lorentzian) peak on a constant, linear
or quadratic background (:mod:`pyscatter.kernels.peaks`); a block of spectra is fitted per window
in one batched Levenberg--Marquardt call. Outputs, one value per peak (spectroscopic dim
``peak``, valued at the nominal peak positions):

``position``, ``position_sigma``, ``fwhm``, ``fwhm_sigma`` (axis unit), ``area``,
``area_sigma`` (intensity × axis unit), ``height`` (intensity), ``eta`` (Lorentzian fraction),
``R2``, ``status`` (:class:`~pyscatter.kernels.fitting.FitStatus` codes, recorded on the group),
and, on a q or (with a wavelength) 2theta axis, ``d_spacing`` = 2 pi / q, plus
``crystallite_size`` (Scherrer, ``K = 0.9``) when ``instrument_fwhm`` is given:
``L = 2 pi K / sqrt(fwhm_q^2 - instrument_fwhm_q^2)`` — in q the wavelength cancels out
(``dq = (2 pi / lambda) cos(theta) d(2theta)``); on a 2theta axis ``L = K lambda / (beta cos
theta)`` with the wavelength of the geometry recorded in the file. Sizes and d-spacings come in
the inverse unit of q (nm for q in 1/nm; nm on a 2theta axis).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.usid import Dim, dims_of
from pyscatter.kernels.fitting import FitStatus
from pyscatter.kernels.peaks import BACKGROUNDS, SHAPES
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.processes.decomposition import _positive_int, check_source, default_spectra

__all__ = ["SIGMAS", "PeakFit"]

log = logging.getLogger(__name__)

SIGMAS = ("auto", "none", "poisson")
_INVERSE = {"1/nm": "nm", "nm^-1": "nm", "1/A": "A", "A^-1": "A", "1/Å": "Å", "Å^-1": "Å"}


def _axis_kind(dim: Dim) -> str:
    """``q``, ``2theta_deg``, ``2theta_rad`` or ``other`` (no d-spacing, no size)."""
    label, units = dim.name.lower(), dim.units
    if label.startswith("q") and units in _INVERSE:
        return "q"
    if label in ("2theta", "2th", "two_theta", "tth") and units in ("deg", "rad"):
        return f"2theta_{units}"
    return "other"


def _floats(value: Any, name: str) -> list[float]:
    values = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        raise InputError(f"{name} must be finite numbers; got {value!r}")
    return [float(v) for v in values]


def resolve_windows(
    peaks: Sequence[float] | float | None,
    window: Sequence[float] | float | None,
    windows: Sequence[Sequence[float]] | None,
) -> tuple[list[list[float]], list[float]]:
    """``(windows, nominal positions)`` from peaks + a full window width, or explicit windows."""
    if windows is not None:
        if window is not None:
            raise InputError("give either windows=[(lo, hi), ...] or window= with peaks, not both")
        try:
            pairs = [[float(lo), float(hi)] for lo, hi in windows]
        except (TypeError, ValueError):
            raise InputError(f"windows must be pairs (lo, hi); got {windows!r}") from None
        for lo, hi in pairs:
            if not hi > lo:
                raise InputError(f"a window must have lo < hi; got ({lo:g}, {hi:g})")
        nominal = [0.5 * (lo + hi) for lo, hi in pairs]
        if peaks is not None:
            nominal = _floats(peaks, "peaks")
            if len(nominal) != len(pairs):
                raise InputError(f"{len(nominal)} peaks for {len(pairs)} windows")
        return pairs, nominal
    if peaks is None:
        raise InputError("give the peaks (peaks=[...] with window=) or windows=[(lo, hi), ...]")
    centres = _floats(peaks, "peaks")
    if window is None:
        raise InputError("window= (the full width of the fit window around each peak) is needed")
    widths = _floats(window, "window")
    if len(widths) == 1:
        widths = widths * len(centres)
    if len(widths) != len(centres) or min(widths) <= 0:
        raise InputError(
            f"window must be one positive width or one per peak ({len(centres)}); got {window!r}"
        )
    pairs = [[c - w / 2, c + w / 2] for c, w in zip(centres, widths, strict=True)]
    return pairs, centres


def _wavelength(h5_main: h5py.Dataset) -> float | None:
    """Wavelength (m) recorded with the data: a ``geometry`` (pyFAI config) or ``wavelength``."""
    obj: Any = h5_main
    while obj is not None:
        if "geometry" in obj.attrs:
            value = json.loads(obj.attrs["geometry"]).get("wavelength")
            if value:
                return float(value)
        if "wavelength" in obj.attrs:
            return float(obj.attrs["wavelength"])
        obj = obj.parent if obj.name != "/" else None
    return None


def _radial_dim(h5_main: h5py.Dataset) -> Dim:
    """The single, increasing spectroscopic dim of 1-D spectra."""
    dims = dims_of(h5_main, "Spectroscopic")
    if len(dims) != 1:
        raise InputError(
            f"{h5_main.name} has spectroscopic dims {[d.name for d in dims]}; peak fitting "
            "needs 1-D spectra such as I(q) (an integration without npt_azim)"
        )
    axis = dims[0]
    if axis.values.size > 1 and not np.all(np.diff(axis.values) > 0):
        raise InputError(f"the {axis.name} axis of {h5_main.name} must be increasing")
    return axis


def _instrument_widths(instrument_fwhm: Any, n_peaks: int) -> list[float] | None:
    if instrument_fwhm is None:
        return None
    inst = _floats(instrument_fwhm, "instrument_fwhm")
    inst = inst * n_peaks if len(inst) == 1 else inst
    if len(inst) != n_peaks or min(inst) < 0:
        raise InputError(
            f"instrument_fwhm must be one width >= 0 or one per peak ({n_peaks}); "
            f"got {instrument_fwhm!r}"
        )
    return inst


def _wavelength_for(
    h5_main: h5py.Dataset, axis: Dim, kind: str, wavelength: float | None, sizes: bool
) -> float | None:
    """The wavelength (m) a 2theta axis needs (None on q axes, where it cancels out)."""
    if sizes and kind == "other":
        raise InputError(
            f"crystallite sizes need a q or 2theta axis; {h5_main.name} has "
            f"{axis.name} [{axis.units}]"
        )
    if not kind.startswith("2theta"):
        return None
    recorded = json.loads(h5_main.parent.attrs.get("parameters", "{}"))
    if wavelength is None and "wavelength" in recorded.get("geometry_series", {}).get("keys", []):
        raise InputError(
            f"{h5_main.file.filename}:{h5_main.name} is on a {axis.name} axis of an energy "
            "series: every position has its own wavelength, so 2theta gives no d-spacing or "
            "size with one; integrate it in q (unit q_nm^-1), where the wavelength cancels out"
        )
    wavelength = _wavelength(h5_main) if wavelength is None else float(wavelength)
    if wavelength is None and sizes:
        raise InputError(
            f"a Scherrer size on a {axis.name} axis needs the wavelength; none is recorded "
            f"in {h5_main.file.filename}: give wavelength= (m)"
        )
    if wavelength is not None and not wavelength > 0:
        raise InputError(f"wavelength must be positive (m); got {wavelength}")
    return wavelength


class PeakFit(ScatterProcess):
    """Fit Bragg peaks in the I(q) of every position.

    Parameters
    ----------
    h5_main : h5py.Dataset
        1-D spectra (positions × q), e.g. an AzimuthalIntegration ``Intensity``.
    peaks : float or sequence of float, optional
        Nominal peak positions (axis unit), with ``window``.
    window : float or sequence of float, optional
        Full width of the fit window centred on each peak: ``[peak - window/2, peak + window/2]``.
    windows : sequence of (float, float), optional
        Explicit ``(lo, hi)`` windows instead of ``peaks`` + ``window``.
    shape : {"pseudo_voigt", "gaussian", "lorentzian"}
    background : {"constant", "linear", "quadratic"}
    instrument_fwhm : float or sequence of float, optional
        Instrumental FWHM (axis unit), one or one per peak: enables ``crystallite_size``
        (0 for no correction).
    scherrer_k : float
        Scherrer constant (0.9).
    wavelength : float, optional
        In m, for a 2theta axis; default: the wavelength recorded in the file.
    sigma : {"auto", "none", "poisson"}
        ``auto``: the ``<source>_Sigma`` dataset beside the source when there is one (absolute
        errors), else unit weights with errors scaled by the reduced chi^2; ``poisson``:
        ``sqrt(max(I, 1))`` (raw counts).
    max_iter : int
        Levenberg--Marquardt iterations.
    **kwargs
        Execution options of :class:`~pyscatter.processes.base.ScatterProcess`.
    """

    process_name = "PeakFit"
    factory = "pyscatter.processes.peaks_worker:build"
    nexus_signal = "position"

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        peaks: Sequence[float] | float | None = None,
        window: Sequence[float] | float | None = None,
        windows: Sequence[Sequence[float]] | None = None,
        shape: str = "pseudo_voigt",
        background: str = "linear",
        instrument_fwhm: Sequence[float] | float | None = None,
        scherrer_k: float = 0.9,
        wavelength: float | None = None,
        sigma: str = "auto",
        max_iter: int = 100,
        **kwargs: Any,
    ) -> None:
        check_source(h5_main)
        axis = _radial_dim(h5_main)
        if shape not in SHAPES:
            raise InputError(f"unsupported shape {shape!r}; expected one of {', '.join(SHAPES)}")
        if background not in BACKGROUNDS:
            raise InputError(
                f"unsupported background {background!r}; expected one of {', '.join(BACKGROUNDS)}"
            )
        pairs, nominal = resolve_windows(peaks, window, windows)
        self._check_windows(
            axis, pairs, 3 + (shape == "pseudo_voigt") + BACKGROUNDS.index(background) + 1
        )
        kind = _axis_kind(axis)
        inst = _instrument_widths(instrument_fwhm, len(pairs))
        wavelength = _wavelength_for(h5_main, axis, kind, wavelength, inst is not None)
        if not scherrer_k > 0:
            raise InputError(f"scherrer_k must be positive; got {scherrer_k}")
        if sigma not in SIGMAS:
            raise InputError(f"unsupported sigma {sigma!r}; expected one of {', '.join(SIGMAS)}")
        sibling = h5_main.parent.get(f"{h5_main.name.rsplit('/', 1)[-1]}_Sigma")
        sigma_dataset = sibling.name if sigma == "auto" and sibling is not None else None
        params = {
            "windows": pairs,
            "peaks": nominal,
            "shape": shape,
            "background": background,
            "instrument_fwhm": inst,
            "scherrer_k": float(scherrer_k),
            "wavelength": wavelength,
            "sigma": "dataset" if sigma_dataset else ("poisson" if sigma == "poisson" else "none"),
            "sigma_dataset": sigma_dataset,
            "max_iter": _positive_int(max_iter, "max_iter"),
            "axis_kind": kind,
            "axis_units": axis.units,
        }
        self._axis = axis
        super().__init__(h5_main, params, **kwargs)

    @staticmethod
    def _check_windows(axis: Dim, pairs, n_par: int) -> None:
        x = axis.values
        for k, (lo, hi) in enumerate(pairs):
            n = int(((x >= lo) & (x <= hi)).sum())
            if n <= n_par:
                raise InputError(
                    f"peak window {k} ({lo:g}, {hi:g}) {axis.units} holds {n} bins of the "
                    f"{axis.name} axis [{x.min():g}, {x.max():g}]; the fit needs more than {n_par}"
                )

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        """The latest 1-D AzimuthalIntegration ``Intensity`` (cakes are skipped)."""
        return default_spectra(h5, one_d=True)

    def _worker_parameters(self) -> str:
        """Parameters + the source's fingerprint: a worker's cached function (which read the
        axis) is never reused for another file written at the same path."""
        params = dict(self.parameters, source=self._source.name, fingerprint=self.fingerprint)
        return json.dumps(params, sort_keys=True)

    def _outputs(self) -> list[Output]:
        if getattr(self, "_outputs_cache", None) is None:
            p = self.parameters
            x_units = self._axis.units
            intensity = str(self._source.attrs["units"])
            dims = (Dim("peak", x_units, np.asarray(p["peaks"])),)
            table = [
                ("position", "Peak position", x_units),
                ("position_sigma", "Peak position sigma", x_units),
                ("fwhm", "Full width at half maximum", x_units),
                ("fwhm_sigma", "FWHM sigma", x_units),
                ("area", "Integrated intensity", f"{intensity}*{x_units}"),
                ("area_sigma", "Integrated intensity sigma", f"{intensity}*{x_units}"),
                ("height", "Peak height", intensity),
                ("eta", "Lorentzian fraction", "1"),
                ("R2", "Weighted R2", "1"),
            ]
            outs = [Output(n, q, u, dims) for n, q, u in table]
            outs.append(Output("status", "Fit status", "code", dims, dtype=np.int8))
            kind = p["axis_kind"]
            if kind == "q" or (kind != "other" and p["wavelength"] is not None):
                length = _INVERSE.get(x_units, "nm")
                outs.append(Output("d_spacing", "d-spacing", length, dims))
                if p["instrument_fwhm"] is not None:
                    outs.append(
                        Output("crystallite_size", "Scherrer crystallite size", length, dims)
                    )
            self._outputs_cache = outs
        return self._outputs_cache

    def _bytes_per_position(self) -> int:
        n_spec = self._source.shape[1]
        widest = max(
            int(((self._axis.values >= lo) & (self._axis.values <= hi)).sum())
            for lo, hi in self.parameters["windows"]
        )
        # spectra, sigma, weights; per window: data, residuals, Jacobian (n_par ≤ 7), curves
        return n_spec * 8 * 4 + widest * 8 * 16

    def _setup_extra(self, group: h5py.Group) -> None:
        group.attrs["status_codes"] = json.dumps({s.name: int(s.value) for s in FitStatus})
        group.attrs["status_description"] = (
            "OK: converged, area >= 3 sigma; WEAK: area below 3 sigma (no significant peak); "
            "NOT_CONVERGED; TOO_FEW_POINTS; FAILED: non-finite, negative area, or the centre on "
            "a window edge (no peak inside). Values are NaN unless OK or WEAK."
        )
        group.attrs["scherrer_formula"] = (
            "q axis: L = 2 pi K / sqrt(fwhm^2 - instrument_fwhm^2); "
            "2theta axis: L = K lambda / (beta cos theta), beta = sqrt(fwhm^2 - instrument^2) in rad"
        )
