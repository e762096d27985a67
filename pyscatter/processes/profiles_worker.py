"""Worker side of azimuthal profiles and sectors (no pyUSID): pyFAI matrices, stacked.

Every ring (or sector) is one pyFAI CSR integration: a 2-D one with one radial bin over
[q − w, q + w] and ``npt_azim`` azimuthal bins for a ring, a 1-D one restricted to an azimuth
range for a sector. Their sparse matrices are stacked into one, wrapped in one
:class:`~pyscatter.kernels.integrate.BatchIntegrator`, so a block of frames is read and
converted once for all rings; each row of the stacked matrix is summed exactly as alone, so
the result is the same as one ``BatchIntegrator`` per ring, bit for bit.

Guard bins. With a ``radial_range``, pyFAI's CSR matrices (pyFAI 2026.9, "no" and "bbox"
splitting) put the pixels lying up to one bin *below* the range into the first bin (a
truncation towards zero of a negative bin index), and bbox splitting folds the parts of pixels
beyond the upper edge into the last bin. With a single radial bin over [q − w, q + w] the
"ring" would take pixels down to q − 3w. Every radial range here is therefore integrated with
one extra bin of the same width on each side, and those two guard bins are dropped: the bins
kept hold exactly the pixels (or pixel fractions) inside them.
"""

from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp

from pyscatter.errors import InputError
from pyscatter.kernels.integrate import SPLITTINGS, BatchIntegrator


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
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray | None, str]:
    """pyFAI's CSR matrix (pixels → bins) of one integration, as ``from_pyfai`` takes it.

    Returns (matrix float32 (n_bins, n_pix), radial centres, azimuthal centres or None, unit).
    For 2-D the rows are ``i_q * npt_azim + i_chi``.
    """
    res, engine = pyfai_engine(
        ai,
        shape,
        npt=npt,
        unit=unit,
        method=method,
        mask=mask,
        radial_range=radial_range,
        azimuth_range=azimuth_range,
        npt_azim=npt_azim,
    )
    if npt_azim is None:
        azimuthal, unit_name = None, str(res.unit)
    else:
        azimuthal, unit_name = np.asarray(res.azimuthal, dtype=np.float64), str(res.radial_unit)
    matrix = sp.csr_matrix(
        (
            np.array(engine.data, dtype=np.float32),
            np.array(engine.indices),
            np.array(engine.indptr),
        ),
        shape=(engine.output_size, shape[0] * shape[1]),
    )
    return matrix, np.asarray(res.radial, dtype=np.float64), azimuthal, unit_name


def guarded_matrix(
    ai: Any,
    shape: tuple[int, int],
    *,
    npt: int,
    unit: str,
    method: tuple[str, str, str],
    mask: np.ndarray | None,
    radial_range: tuple[float, float],
    azimuth_range: tuple[float, float] | None = None,
    npt_azim: int | None = None,
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray | None, str]:
    """:func:`pyfai_matrix` over ``radial_range`` without pyFAI's edge effects (guard bins).

    Integrates ``npt + 2`` bins over the range widened by one bin on each side and keeps the
    ``npt`` inner ones (see the module docstring). Same returns as :func:`pyfai_matrix`.
    """
    lo, hi = float(radial_range[0]), float(radial_range[1])
    step = (hi - lo) / int(npt)
    matrix, radial, azimuthal, unit_name = pyfai_matrix(
        ai,
        shape,
        npt=int(npt) + 2,
        unit=unit,
        method=method,
        mask=mask,
        radial_range=(lo - step, hi + step),
        azimuth_range=azimuth_range,
        npt_azim=npt_azim,
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
    dummy: float | None,
    delta_dummy: float | None,
    correct_solid_angle: bool,
    polarization_factor: float | None,
    error_model: str | None,
) -> BatchIntegrator:
    """A BatchIntegrator over a stacked matrix, with the corrections ``from_pyfai`` uses.

    Rows are ``i_radial * len(azimuthal) + i_azimuthal``; empty bins come out NaN.
    """
    detector = ai.detector
    detector_dummy = None
    if dummy is None and detector.dummy is not None:
        detector_dummy = (detector.dummy, detector.delta_dummy)
    return BatchIntegrator(
        matrix,
        shape,
        radial=radial,
        unit=unit,
        azimuthal=azimuthal,
        solid_angle=ai.solidAngleArray(shape, True) if correct_solid_angle else None,
        polarization=None
        if polarization_factor is None
        else ai.polarization(shape, polarization_factor),
        flat=detector.flatfield,
        dark=detector.darkcurrent,
        mask=mask,
        dummy=dummy,
        delta_dummy=delta_dummy,
        detector_dummy=detector_dummy,
        error_model=error_model,
        empty=float("nan"),
    )


def ring_integrator(ai: Any, params: dict[str, Any], mask: np.ndarray | None) -> BatchIntegrator:
    """One integrator for all rings: radial axis = rings, azimuthal axis = chi."""
    shape = (int(params["frame_shape"][0]), int(params["frame_shape"][1]))
    method = csr_method(params["method"], 2)
    pieces, chi = [], None
    for ring in params["rings"]:
        matrix, _, azimuthal, unit = guarded_matrix(
            ai,
            shape,
            npt=1,
            npt_azim=params["npt_azim"],
            unit=params["unit"],
            method=method,
            mask=mask,
            radial_range=(ring["q_min"], ring["q_max"]),
            azimuth_range=(-180.0, 180.0),
        )
        pieces.append(matrix)
        chi = azimuthal
    assert chi is not None
    return stacked_integrator(
        ai,
        shape,
        sp.vstack(pieces, format="csr"),
        radial=np.array([ring["q"] for ring in params["rings"]], dtype=np.float64),
        azimuthal=chi,
        unit=unit,
        mask=mask,
        dummy=params["dummy"],
        delta_dummy=params["delta_dummy"],
        correct_solid_angle=params["correct_solid_angle"],
        polarization_factor=params["polarization_factor"],
        error_model=params["error_model"],
    )


def read_mask(h5: h5py.File, paths: list[str], shape: tuple[int, int]) -> np.ndarray | None:
    """Union of the mask datasets at ``paths`` (non-zero = masked), or None."""
    mask = None
    for path in paths:
        m = np.asarray(h5[path][()]).reshape(shape) != 0
        mask = m if mask is None else (mask | m)
    return mask


def block_function(
    integrator: BatchIntegrator, source: str, shape: tuple[int, int], *, radial_slow: bool
):
    """Read positions [start, stop) into a reused buffer and integrate them in one call.

    The kernel gives (n, n_azimuthal, n_radial); the outputs ``Intensity`` and
    ``Intensity_Sigma`` are (n, n_radial * n_azimuthal) with the radial axis slow
    (``radial_slow``, e.g. ring then chi) or (n, n_azimuthal * n_radial) (sector then q).
    """

    def flat(values: np.ndarray, n: int) -> np.ndarray:
        return (values.transpose(0, 2, 1) if radial_slow else values).reshape(n, -1)

    buffers: dict[int, np.ndarray] = {}

    def compute(h5file: h5py.File, start: int, stop: int) -> dict[str, np.ndarray]:
        dset = h5file[source]
        n = stop - start
        buf = buffers.get(n)
        if buf is None:
            buf = buffers[n] = np.empty((n, dset.shape[1]), dtype=dset.dtype)
        dset.read_direct(buf, source_sel=np.s_[start:stop])
        res = integrator.integrate(buf.reshape((n, *shape)))
        out = {"Intensity": flat(res.intensity, n)}
        if res.sigma is not None:
            out["Intensity_Sigma"] = flat(res.sigma, n)
        return out

    compute.radial = integrator.radial  # type: ignore[attr-defined]
    compute.azimuthal = integrator.azimuthal  # type: ignore[attr-defined]
    return compute


def build(spec, h5: h5py.File):
    """Block function of an AzimuthalProfiles spec; ``h5`` gives the masks."""
    params = spec.params
    return make_function(params, read_mask(h5, params["mask_datasets"], _shape(params)))


def _shape(params: dict[str, Any]) -> tuple[int, int]:
    return int(params["frame_shape"][0]), int(params["frame_shape"][1])


def make_function(params: dict[str, Any], mask: np.ndarray | None, ai: Any = None):
    """The block function of the profiles of ``params`` with the combined ``mask``.

    ``ai``: a pyFAI integrator of the recorded geometry to reuse (default: a new one).
    """
    if ai is None:
        import pyFAI

        ai = pyFAI.load(json.loads(params["geometry"]))
    integrator = ring_integrator(ai, params, mask)
    return block_function(integrator, params["source"], _shape(params), radial_slow=True)
