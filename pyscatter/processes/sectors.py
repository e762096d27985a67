"""Sector integration: radial profiles I(q) in angular sectors of every frame, with sigma."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np

from pyscatter.errors import InputError
from pyscatter.io.usid import Dim
from pyscatter.processes.base import Output
from pyscatter.processes.integration import UNITS, check_bins, range_pair
from pyscatter.processes.profiles import UNIT_LABELS, DetectorProcess

_DIM_NAMES = {"q_nm^-1": "q", "q_A^-1": "q", "2th_deg": "2theta", "2th_rad": "2theta", "r_mm": "r"}


class SectorIntegration(DetectorProcess):
    """Radial integration I(q) of every frame in angular sectors.

    Angles are pyFAI's chi in degrees, and sector centres lie in [-180°, 180°), pyFAI's chi
    interval (its default discontinuity at ±180°); the sectors are stored in increasing order
    of their centres. They are either equally spaced (``n_sectors``, ``offset_deg``), centred
    at free angles (``centers_deg``) with a common ``width_deg``, or free azimuth ranges
    (``ranges_deg``). Each is pyFAI's 1-D CSR integration with that azimuth range: with the
    default bbox splitting a pixel belongs to a sector when its azimuthal extent overlaps the
    range (pyFAI's rule), so adjacent sectors share their boundary pixels. A sector crossing
    ±180° is the union of its two parts (their sums add); a width of 360° is the whole circle.

    q bins where no valid pixel falls are NaN in ``Intensity`` and ``Intensity_Sigma``.

    Parameters
    ----------
    h5_main : h5py.Dataset
        Image main dataset (positions × Row·Col), e.g. ``Raw_Data``.
    n_sectors : int, optional
        Number of equally spaced sectors (>= 1), centred at ``offset_deg + k·360/n_sectors``
        (wrapped into [-180, 180) and sorted); default 8 when neither ``centers_deg`` nor
        ``ranges_deg`` is given.
    width_deg : float, optional
        Angular width of each sector in (0, 360]; default ``360 / n_sectors`` (sectors tile the
        circle). Required with ``centers_deg``.
    offset_deg : float
        A centre of the equally spaced sectors (degrees).
    centers_deg : sequence of float, optional
        Free, distinct sector centres in degrees (any real angle; wrapped into [-180, 180)),
        each spanning ``width_deg``.
    ranges_deg : sequence of (float, float), optional
        Free sectors as azimuth ranges ``(start, stop)`` in degrees, ``start < stop``, at most
        360° wide (e.g. ``(170, 190)`` crosses ±180°); the centre of each is its middle.
    npt : int
        Radial bins, 1 to :data:`~pyscatter.processes.integration.MAX_NPT`.
    unit : str
        pyFAI radial unit: ``q_nm^-1``, ``q_A^-1``, ``2th_deg``, ``2th_rad``, ``r_mm``.
    radial_range : (float, float), optional
        Common radial range of all sectors in ``unit``; default the range of pyFAI's full 1-D
        integration of the unmasked detector (the same bins as AzimuthalIntegration with the
        same ``npt``). Recorded in the parameters. A range given here is integrated with a
        guard bin on each side, so that its first and last bins hold only their own pixels
        (pyFAI alone adds pixels from up to one bin below the range to the first bin).
    **options
        The detector set-up as in :class:`~pyscatter.processes.profiles.AzimuthalProfiles`
        (:data:`~pyscatter.processes.options.DETECTOR_OPTIONS`; a 1-D CSR method, error model
        ``"poisson"`` by default), then the execution options of
        :class:`~pyscatter.processes.base.ScatterProcess`.

    Notes
    -----
    Outputs ``Intensity`` and ``Intensity_Sigma`` have spectroscopic dims (sector, q): the
    ``sector`` values are the centre angles in degrees, increasing; the recorded parameter
    ``sectors`` lists each one's centre, width and the pyFAI azimuth ranges integrated.

    Examples
    --------
    >>> from pyscatter.processes.sectors import sector_layout
    >>> [s["center"] for s in sector_layout(n_sectors=4)]
    [-180.0, -90.0, 0.0, 90.0]
    >>> sector_layout(ranges_deg=[(170, 190), (0, 30)])[0]["ranges"]
    [[170.0, 180.0], [-180.0, -170.0]]
    """

    process_name = "SectorIntegration"
    factory = "pyscatter.processes.sectors_worker:build"
    method_dim = 1

    def __init__(
        self,
        h5_main: h5py.Dataset,
        *,
        n_sectors: int | None = None,
        width_deg: float | None = None,
        offset_deg: float = 0.0,
        centers_deg: Sequence[float] | None = None,
        ranges_deg: Sequence[tuple[float, float]] | None = None,
        npt: int = 300,
        unit: str = "q_nm^-1",
        radial_range: tuple[float, float] | None = None,
        **options: Any,
    ) -> None:
        if unit not in UNITS:
            raise InputError(f"unsupported unit {unit!r}; expected one of {', '.join(UNITS)}")
        npt, _ = check_bins(npt, None)
        radial_range = _radial_range(radial_range)
        sectors = sector_layout(
            n_sectors=n_sectors,
            width_deg=width_deg,
            offset_deg=offset_deg,
            centers_deg=centers_deg,
            ranges_deg=ranges_deg,
        )
        widths = {s["width"] for s in sectors}
        params = {
            "n_sectors": len(sectors),
            "width_deg": widths.pop() if len(widths) == 1 else None,
            "offset_deg": float(offset_deg) if centers_deg is None and ranges_deg is None else None,
            "npt": int(npt),
            "unit": unit,
            "radial_range": None if radial_range is None else list(radial_range),
            "guard_bins": radial_range is not None,
            "sectors": sectors,
        }
        super().__init__(h5_main, params, **options)

    def _resolve_parameters(
        self, params: dict[str, Any], mask: np.ndarray | None
    ) -> dict[str, Any]:
        if params["radial_range"] is not None:
            return params
        from pyscatter.processes.sectors_worker import cached_radial_range

        lo, hi = cached_radial_range(params, mask, lambda: self._integrator(params))
        return dict(params, radial_range=[lo, hi])

    def _make_function(self, params, mask, *, dark, flat):
        from pyscatter.processes.sectors_worker import make_function

        return make_function(params, mask, self.setup.built_integrator, dark=dark, flat=flat)

    def _outputs(self) -> list[Output]:
        if getattr(self, "_outputs_cache", None) is None:
            radial = self._local_function().radial
            unit = self.parameters["unit"]
            centres = np.array([s["center"] for s in self.parameters["sectors"]])
            dims = (
                Dim("sector", "deg", centres),
                Dim(_DIM_NAMES[unit], UNIT_LABELS[unit], radial),
            )
            self._outputs_cache = [
                Output("Intensity", "Intensity", "a.u.", dims),
                Output("Intensity_Sigma", "Intensity sigma", "a.u.", dims),
            ]
        return self._outputs_cache


def _radial_range(radial_range: Any) -> tuple[float, float] | None:
    return None if radial_range is None else range_pair("radial_range", radial_range)


def _finite(value: Any, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an angle in degrees; got {value!r}") from None
    if not math.isfinite(out):
        raise InputError(f"{name} must be a finite angle in degrees; got {value!r}")
    return out


def _width(width_deg: Any) -> float:
    width = _finite(width_deg, "width_deg")
    if not 0 < width <= 360:
        raise InputError(f"width_deg must lie in (0, 360] degrees; got {width_deg!r}")
    return width


def sector_layout(
    *,
    n_sectors: int | None = None,
    width_deg: float | None = None,
    offset_deg: float = 0.0,
    centers_deg: Sequence[float] | None = None,
    ranges_deg: Sequence[tuple[float, float]] | None = None,
) -> list[dict[str, Any]]:
    """The sectors asked for, in increasing order of their centres in [-180°, 180°).

    Exactly one way of choosing them: equally spaced (``n_sectors``, ``offset_deg``, optional
    ``width_deg``), free centres (``centers_deg`` with ``width_deg``) or free azimuth ranges
    (``ranges_deg``); see :class:`SectorIntegration`.

    Returns
    -------
    list of dict
        ``{"center": deg, "width": deg, "ranges": [[lo, hi], …] or None}`` per sector: the
        pyFAI azimuth ranges (inside [-180, 180]) whose union is the sector, None for the
        whole circle.

    Raises
    ------
    InputError
        Naming the parameter: several ways at once, a count, width or angle out of range, a
        range with start >= stop, or two sectors with the same centre.
    """
    from pyscatter.kernels.models import wrap_deg
    from pyscatter.kernels.sectors import sector_centers, sector_ranges

    chosen = [
        name
        for name, value in (("centers_deg", centers_deg), ("ranges_deg", ranges_deg))
        if value is not None
    ]
    if len(chosen) > 1 or (chosen and n_sectors is not None):
        given = (["n_sectors"] if n_sectors is not None else []) + chosen
        raise InputError(
            f"give one of n_sectors, centers_deg or ranges_deg; got {', '.join(given)}"
        )
    offset = _finite(offset_deg, "offset_deg")
    if chosen and offset != 0:
        raise InputError(f"offset_deg applies to n_sectors, not to {chosen[0]}; got {offset_deg!r}")
    if ranges_deg is not None:
        if width_deg is not None:
            raise InputError("width_deg does not apply to ranges_deg (each range has its width)")
        pairs = _centres_of_ranges(ranges_deg)
    elif centers_deg is not None:
        if width_deg is None:
            raise InputError("centers_deg needs width_deg, the width of every sector")
        width = _width(width_deg)
        centres = [_finite(c, "centers_deg") for c in _sequence(centers_deg, "centers_deg")]
        pairs = [(float(wrap_deg(c)), width) for c in centres]
    else:
        n = _count(8 if n_sectors is None else n_sectors)
        width = 360.0 / n if width_deg is None else _width(width_deg)
        pairs = [(float(c), width) for c in sector_centers(n, offset)]
    pairs.sort()
    centres = [c for c, _ in pairs]
    if len(set(centres)) < len(centres):
        raise InputError(
            f"two sectors share a centre (degrees in [-180, 180)): {centres}; the sector axis "
            "needs distinct centres"
        )
    out = []
    for centre, width in pairs:
        ranges = sector_ranges(centre, width)
        out.append(
            {
                "center": centre,
                "width": width,
                "ranges": None if ranges is None else [[float(a), float(b)] for a, b in ranges],
            }
        )
    return out


def _count(n_sectors: Any) -> int:
    try:
        ok = not isinstance(n_sectors, bool) and int(n_sectors) == n_sectors and n_sectors >= 1
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise InputError(f"n_sectors must be a positive integer; got {n_sectors!r}")
    return int(n_sectors)


def _sequence(value: Any, name: str) -> list[Any]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise InputError(f"{name} must be a list; got {value!r}")
    if len(value) == 0:
        raise InputError(f"{name} must hold at least one sector; got {value!r}")
    return list(value)


def _centres_of_ranges(ranges_deg: Any) -> list[tuple[float, float]]:
    """(centre in [-180, 180), width) of each (start, stop) range."""
    from pyscatter.kernels.models import wrap_deg

    pairs = []
    for item in _sequence(ranges_deg, "ranges_deg"):
        try:
            start, stop = item
        except (TypeError, ValueError):
            raise InputError(f"ranges_deg: expected (start, stop) pairs; got {item!r}") from None
        start, stop = _finite(start, "ranges_deg start"), _finite(stop, "ranges_deg stop")
        if not 0 < stop - start <= 360:
            raise InputError(
                f"ranges_deg: each (start, stop) needs start < stop <= start + 360; got {item!r}"
            )
        pairs.append((float(wrap_deg(0.5 * (start + stop))), stop - start))
    return pairs
