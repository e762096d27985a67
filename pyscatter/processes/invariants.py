"""SAXS integral parameters of every I(q) of a map: Guinier Rg and I0, invariant, Porod constant.

Over a q range of the 1-D spectra (default: the whole axis), per position
(:mod:`pyscatter.kernels.invariants`, one vectorised call per block):

``Rg``, ``Rg_sigma`` (the inverse unit of q), ``I0``, ``I0_sigma``
    Guinier law ``ln(I - B) = ln I0 - Rg^2 q^2 / 3``, a weighted line in ``q^2`` over a given
    range or the largest low-q range with ``q Rg <= qrg_max`` (refitted until it holds).
``guinier_q_min``, ``guinier_q_max``
    The q range actually fitted.
``invariant``, ``invariant_sigma`` (intensity × q^3)
    ``Q* = integral q^2 (I - B) dq``, trapezoid over the range, plus the Guinier extrapolation
    to q = 0 and the Porod tail ``K / q_last`` when asked (recorded in the parameters).
``porod_constant``, ``porod_constant_sigma`` (intensity × q^4)
    ``K``: the mean of ``q^4 (I - B)`` over a high-q range (given; default the upper quarter
    of the q range).
``status``
    :class:`~pyscatter.kernels.invariants.InvariantStatus` codes (recorded on the group).

Errors are linear propagation of ``Intensity_Sigma`` (or Poisson errors, or the scatter of the
data: ``sigma``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.usid import Dim
from pyscatter.kernels.invariants import InvariantStatus
from pyscatter.processes.base import Output, ScatterProcess
from pyscatter.processes.decomposition import _positive_int, check_source, default_spectra
from pyscatter.processes.peaks import _INVERSE, SIGMAS, _radial_dim

__all__ = ["OUTPUTS", "SaxsInvariants"]

#: name -> (quantity, units from the intensity unit ``I`` and the q unit ``Q``, length ``L``)
OUTPUTS = {
    "Rg": ("Radius of gyration", "{L}"),
    "Rg_sigma": ("Radius of gyration sigma", "{L}"),
    "I0": ("Guinier forward intensity", "{I}"),
    "I0_sigma": ("Guinier forward intensity sigma", "{I}"),
    "guinier_q_min": ("Guinier range start", "{Q}"),
    "guinier_q_max": ("Guinier range end", "{Q}"),
    "invariant": ("Invariant", "{I}*({Q})^3"),
    "invariant_sigma": ("Invariant sigma", "{I}*({Q})^3"),
    "porod_constant": ("Porod constant", "{I}*({Q})^4"),
    "porod_constant_sigma": ("Porod constant sigma", "{I}*({Q})^4"),
}


def _range(value: Any, name: str, axis: Dim | None = None) -> list[float] | None:
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be two numbers [lo, hi]; got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise InputError(f"{name} must be finite with lo < hi; got {value!r}")
    if axis is not None and (hi < axis.values[0] or lo > axis.values[-1]):
        raise InputError(
            f"{name} [{lo:g}, {hi:g}] misses the {axis.name} axis "
            f"[{axis.values[0]:g}, {axis.values[-1]:g}] {axis.units}"
        )
    return [lo, hi]


def _number(value: Any, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise InputError(f"{name} must be a number; got {value!r}")
    if not np.isfinite(value) or (positive and not value > 0):
        raise InputError(
            f"{name} must be a {'positive' if positive else 'finite'} number; got {value!r}"
        )
    return float(value)


class SaxsInvariants(ScatterProcess):
    """Guinier Rg and I0, the invariant Q* and the Porod constant K of every I(q).

    Parameters
    ----------
    h5_main : h5py.Dataset
        1-D spectra (positions × q), e.g. an AzimuthalIntegration ``Intensity``; the axis must
        be q (1/nm or 1/A): lengths come in nm or A.
    q_range : (float, float), optional
        Only bins with ``lo <= q <= hi`` (default: the whole axis).
    guinier_range : (float, float), optional
        The Guinier fit range; default: automatic, the largest low-q range with
        ``q Rg <= qrg_max``.
    porod_range : (float, float), optional
        The range of the Porod constant; default: the upper quarter of the q range.
    background : float
        Constant intensity subtracted before everything (Guinier, Q*, K).
    qrg_max : float
        Upper limit of ``q Rg`` of the automatic Guinier range (1.3; the Guinier law's own
        error on Rg there is about +1.7 % for spheres and -6 % for Gaussian chains, see the
        user guide: 0.8 and 0.5 keep it under 1 %).
    min_points : int
        Fewest bins of a fit range.
    guinier_extrapolation, porod_extrapolation : bool
        Add the Guinier part from q = 0 and the Porod tail to infinity to Q*.
    sigma : {"auto", "none", "poisson"}
        ``auto``: ``<source>_Sigma`` beside the source when there is one, else as ``none``
        (Guinier errors from the scatter about the line, K's from the scatter of
        ``q^4 (I - B)``, no error on Q*); ``poisson``: ``sqrt(max(I, 1))``.
    max_iter : int
        Refits of the automatic Guinier range.
    **kwargs
        Execution options of :class:`~pyscatter.processes.base.ScatterProcess`.
    """

    process_name = "SaxsInvariants"
    factory = "pyscatter.processes.invariants_worker:build"
    nexus_signal = "Rg"

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        q_range: Sequence[float] | None = None,
        guinier_range: Sequence[float] | None = None,
        porod_range: Sequence[float] | None = None,
        background: float = 0.0,
        qrg_max: float = 1.3,
        min_points: int = 5,
        guinier_extrapolation: bool = False,
        porod_extrapolation: bool = False,
        sigma: str = "auto",
        max_iter: int = 50,
        **kwargs: Any,
    ) -> None:
        check_source(h5_main)
        axis = _radial_dim(h5_main)
        if not (axis.name.lower().startswith("q") and axis.units in _INVERSE):
            raise InputError(
                f"SAXS invariants need a q axis in 1/nm or 1/A; {h5_main.name} has "
                f"{axis.name} [{axis.units}] (integrate with unit q_nm^-1 or q_A^-1)"
            )
        q = axis.values
        span = _range(q_range, "q_range", axis) or [float(q[0]), float(q[-1])]
        lo, hi = max(span[0], float(q[0])), min(span[1], float(q[-1]))
        porod = _range(porod_range, "porod_range", axis) or [hi - 0.25 * (hi - lo), hi]
        for name, flag in (("guinier_extrapolation", guinier_extrapolation),
                           ("porod_extrapolation", porod_extrapolation)):  # fmt: skip
            if not isinstance(flag, bool):
                raise InputError(f"{name} must be true or false; got {flag!r}")
        if sigma not in SIGMAS:
            raise InputError(f"unsupported sigma {sigma!r}; expected one of {', '.join(SIGMAS)}")
        sibling = h5_main.parent.get(f"{h5_main.name.rsplit('/', 1)[-1]}_Sigma")
        sigma_dataset = sibling.name if sigma == "auto" and sibling is not None else None
        min_points = _positive_int(min_points, "min_points", 3)
        in_range = int(((q >= lo) & (q <= hi)).sum())
        if in_range < min_points:
            raise InputError(
                f"q_range [{lo:g}, {hi:g}] holds {in_range} bins of the {axis.name} axis; "
                f"at least min_points = {min_points} are needed"
            )
        params = {
            "q_range": span,
            "guinier_range": _range(guinier_range, "guinier_range", axis),
            "porod_range": porod,
            "background": _number(background, "background"),
            "qrg_max": _number(qrg_max, "qrg_max", positive=True),
            "min_points": min_points,
            "guinier_extrapolation": guinier_extrapolation,
            "porod_extrapolation": porod_extrapolation,
            "sigma": "dataset" if sigma_dataset else ("poisson" if sigma == "poisson" else "none"),
            "sigma_dataset": sigma_dataset,
            "max_iter": _positive_int(max_iter, "max_iter"),
            "axis_units": axis.units,
        }
        self._axis = axis
        super().__init__(h5_main, params, **kwargs)

    @classmethod
    def default_source(cls, h5: h5py.File) -> h5py.Dataset:
        """The latest 1-D AzimuthalIntegration ``Intensity`` (cakes are skipped)."""
        return default_spectra(h5, one_d=True)

    def _worker_parameters(self) -> str:
        """Parameters + the source's fingerprint (a worker's cached axis is per file)."""
        params = dict(self.parameters, source=self._source.name, fingerprint=self.fingerprint)
        return json.dumps(params, sort_keys=True)

    def _outputs(self) -> list[Output]:
        q_units = self._axis.units
        units = {"I": str(self._source.attrs.get("units", "a.u.")), "Q": q_units,
                 "L": _INVERSE[q_units]}  # fmt: skip
        one = (Dim("value", "1", np.zeros(1)),)
        outs = [
            Output(name, quantity, unit.format(**units), one, dtype=np.float64)
            for name, (quantity, unit) in OUTPUTS.items()
        ]
        outs.append(Output("status", "Status", "code", one, dtype=np.int8))
        return outs

    def _bytes_per_position(self) -> int:
        # spectra and sigma, and about a dozen float64 working arrays of the same width
        return int(self._source.shape[1] * 8 * 16)

    def _setup_extra(self, group: h5py.Group) -> None:
        group.attrs["status_codes"] = json.dumps({s.name: int(s.value) for s in InvariantStatus})
        group.attrs["status_description"] = (
            "OK; NOT_CONVERGED: the automatic Guinier range kept changing; TOO_FEW_POINTS: fewer "
            "than min_points bins in the q, Guinier or Porod range; FAILED: non-finite result; "
            "NO_GUINIER_RANGE: Rg^2 <= 0 or no bins with q Rg <= qrg_max; NEGATIVE_INTENSITY: "
            "I - background <= 0 in the Guinier range. The status is the first problem found; "
            "values it does not affect are kept, the others are NaN."
        )
        group.attrs["formulas"] = (
            "ln(I - B) = ln I0 - Rg^2 q^2 / 3 (weighted line in q^2); "
            "Q* = trapz q^2 (I - B) dq [+ int_0^q1 q^2 I0 exp(-Rg^2 q^2/3) dq] [+ K / q_last]; "
            "K = mean q^4 (I - B) over porod_range"
        )
