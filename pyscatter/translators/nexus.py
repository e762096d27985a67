"""NeXus and plain HDF5 files: one dataset of frames, the ``@default`` NXdata, or an Eiger master.

What is read, in order of precedence:

* ``dataset="/entry/data/data"``: that dataset (or that NXdata group's ``@signal``);
* a Dectris Eiger master file (``/entry/data/data_000001`` … external links to data files): the
  linked datasets, concatenated in the order of their ``image_nr_low`` attribute (else of their
  names); every data file is opened by this translator, so a missing one is named;
* otherwise the NXdata the ``@default`` attributes point to (file → NXentry → NXdata), read with
  silx, its ``@signal`` and ``@axes``.

A signal of 3 or more dims is a stack of images (the last two dims are rows and columns; the
leading ones are the scan); of 2 dims a stack of spectra (last dim ``Channel``) unless its
``@interpretation`` is ``"image"``; ``kind=`` overrides. Position dims, slow to fast, come from:

* ``axes={"Y": "/entry/sample/y", "X": "/entry/sample/x"}`` (names may carry units, ``"Y[mm]"``;
  else the dataset's ``@units``): one 1-D dataset per leading dim of its size, or one dataset of
  read-backs per dim with one value per frame, whose nested grid is inferred (jitter tolerated, see
  :func:`pyscatter.translators.grid_inference.infer_grid`) — the way to give a flat Eiger series its
  grid with real motor values;
* ``grid={"Y": 6, "X": 8}``: index dims over the frames (slow to fast);
* the NXdata ``@axes`` of the leading dims, when they are 1-D datasets of the right size;
* else one dim ``Image`` (or ``Spectrum``) of indices, ``Dim0, Dim1 …`` for several.

Geometry (images): ``poni=`` if given; else the NeXus detector fields of the signal's NXentry
when all are present — ``instrument/detector/{detector_distance or distance, beam_center_x,
beam_center_y, x_pixel_size, y_pixel_size}`` and ``instrument/beam/incident_wavelength`` (or an
NXmonochromator ``wavelength``, or ``incident_energy``), each in the unit its ``@units`` names (a
beam centre in pixels or a length); a field without units is refused, naming it
(:mod:`pyscatter.translators.nexus_geometry`).
A wavelength or energy, distance or beam centre holding one value per frame (or an Eiger
``detectorSpecific/photon_energy`` array) is recorded per position
(:func:`~pyscatter.translators.nexus_geometry.nexus_geometries`, :mod:`pyscatter.io.geometry_series`).
The Eiger ``detectorSpecific/pixel_mask`` (or NXmx ``pixel_mask``) becomes the mask (nonzero =
masked) unless ``mask=`` is given. ``flip`` flips frames, mask and the beam centre alike.

Examples
--------
>>> import tempfile, h5py, numpy as np
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> with h5py.File(folder / "scan.nxs", "w") as h5:
...     h5["/entry/data/frames"] = np.zeros((3, 4, 5), dtype=np.uint16)
>>> out = NexusTranslator().translate(folder / "scan.nxs", folder / "scan.h5",
...                                   dataset="/entry/data/frames", grid="X=3")
>>> from pyscatter.io.usid import main_datasets, dims_of
>>> with h5py.File(out) as h5:
...     [(d.name, len(d)) for d in dims_of(main_datasets(h5)[0], "Position")]
[('X', 3)]
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np

from pyscatter.errors import FileFormatError, InputError
from pyscatter.io.geometry_series import VARIES_ATTR, series_extras
from pyscatter.io.raw import (
    MeasurementSpec,
    RawChunk,
    VirtualFrames,
    chunk_filters,
    write_measurement,
    write_virtual_measurement,
)
from pyscatter.io.usid import Dim, compression_options
from pyscatter.translators.base import Translator, check_output, single_source
from pyscatter.translators.common import (
    HDF5_SIGNATURE,
    PendingRecords,
    attr_text,
    check_flip,
    check_link,
    describe,
    file_record,
    flip_frame,
    image_dims,
    load_mask,
    orientation,
    versions,
)
from pyscatter.translators.geometry_readers import fit2d_geometry, nexus_geometry, poni_geometry
from pyscatter.translators.grid_inference import infer_grid
from pyscatter.translators.nexus_geometry import (
    instrument_groups,
    invalid_value,
    nexus_geometries,
    pixel_mask,
    units_of,
)
from pyscatter.translators.positions import (
    Positions,
    grid_positions,
    parse_grid,
    parse_label,
)

__all__ = ["KINDS", "NexusTranslator", "fit2d_geometry", "nexus_geometry"]

logger = logging.getLogger(__name__)

#: What one frame of the signal is.
KINDS = ("image", "spectrum")
_EIGER_LINK = re.compile(r"^data_\d{6}$")


# --------------------------------------------------------------------------- the signal


@dataclass
class _Signal:
    """The frames to translate: one dataset, or the pieces of an Eiger series, along axis 0."""

    pieces: list[h5py.Dataset]
    where: str
    entry: h5py.Group | None = None
    axis_names: list[str | None] = field(default_factory=list)
    nxdata: h5py.Group | None = None
    interpretation: str = ""
    files: list[Path] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, ...]:
        first = self.pieces[0].shape
        return (sum(p.shape[0] for p in self.pieces), *first[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.pieces[0].dtype


def _entry_of(obj: h5py.HLObject) -> h5py.Group | None:
    parts = [p for p in obj.name.split("/") if p]
    if not parts:
        return None
    top = obj.file[f"/{parts[0]}"]
    return top if isinstance(top, h5py.Group) else None


def _candidates(h5: h5py.File) -> list[str]:
    found: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.ndim >= 2 and len(found) < 12:
            found.append(f"/{name} {obj.shape}")

    h5.visititems(visit)
    return found


def _from_dataset(h5: h5py.File, path: Path, dataset: str) -> _Signal:
    obj = h5.get(dataset)
    if obj is None:
        link = _dangling(h5, dataset)
        listing = "; ".join(_candidates(h5)) or "none"
        raise FileFormatError(
            f"{path}: no dataset {dataset!r}{link}; datasets of 2+ dims in it: {listing}"
        )
    if isinstance(obj, h5py.Group):
        if _eiger_links(obj):
            return _from_eiger(path, obj)
        return _from_nxdata(path, obj)
    return _Signal(
        [obj],
        f"{path}:{obj.name}",
        entry=_entry_of(obj),
        interpretation=attr_text(obj, "interpretation"),
    )


def _dangling(h5: h5py.File, dataset: str) -> str:
    parent, _, name = dataset.rstrip("/").rpartition("/")
    group = h5.get(parent or "/")
    if isinstance(group, h5py.Group) and name in group:
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            return f" (an external link to {link.filename}:{link.path}, which cannot be opened)"
    return ""


def _from_nxdata(path: Path, group: h5py.Group) -> _Signal:
    from silx.io.nxdata import NXdata

    nx = NXdata(group, validate=True)
    signal = nx.signal
    if not nx.is_valid or signal is None:
        issues = "; ".join(nx.issues) or "no @signal"
        raise FileFormatError(f"{path}:{group.name}: not a valid NXdata group ({issues})")
    return _Signal(
        [signal],
        f"{path}:{signal.name}",
        entry=_entry_of(group),
        axis_names=list(nx.axes_dataset_names),
        nxdata=group,
        interpretation=attr_text(signal, "interpretation") or str(nx.interpretation or ""),
    )


def _eiger_links(group: h5py.Group) -> list[str]:
    return sorted(name for name in group if _EIGER_LINK.match(name))


def _from_eiger(path: Path, group: h5py.Group) -> _Signal:
    """The data files of an Eiger master, opened here so a missing one is named."""
    import hdf5plugin  # noqa: F401  (registers the bitshuffle-LZ4 filter Eiger files use)

    found: list[tuple[h5py.Dataset, Path | None]] = []
    try:
        for name in _eiger_links(group):
            found.append(_eiger_piece(path, group, name))
    except BaseException:
        for dset, target in found:
            if target is not None:
                dset.file.close()
        raise
    found.sort(key=lambda item: int(item[0].attrs.get("image_nr_low", 0)))
    pieces = [dset for dset, _ in found]
    shapes = {p.shape[1:] for p in pieces}
    signal = _Signal(
        pieces,
        f"{path}:{group.name}/data_*",
        entry=_entry_of(group),
        files=[target for _, target in found if target is not None],
        interpretation="image",
    )
    if len(shapes) != 1:
        _close_pieces(signal, group.file)
        raise FileFormatError(
            f"{path}: Eiger data files of different frame shapes {sorted(shapes)}"
        )
    return signal


def _eiger_piece(path: Path, group: h5py.Group, name: str) -> tuple[h5py.Dataset, Path | None]:
    link = group.get(name, getlink=True)
    target = None
    if isinstance(link, h5py.ExternalLink):
        target = Path(link.filename)
        if not target.is_absolute():
            target = path.parent / target
        if not target.is_file():
            raise FileFormatError(
                f"{path}: {group.name}/{name} links to {link.filename}:{link.path}; "
                f"no such file {target}"
            )
        try:
            data_file = h5py.File(target, "r")
        except OSError as err:
            raise FileFormatError(f"{target}: not an HDF5 file h5py can open ({err})") from err
        dset = data_file.get(link.path)
    else:
        data_file, dset = None, group[name]
    if not isinstance(dset, h5py.Dataset) or dset.ndim != 3:
        what = "no dataset" if not isinstance(dset, h5py.Dataset) else f"shape {dset.shape} at"
        if data_file is not None:
            data_file.close()
        raise FileFormatError(
            f"{path}: {group.name}/{name} → {target or path}: {what} {link.path if target else name}"
            "; expected (frames, rows, cols)"
        )
    return dset, target


def _close_pieces(signal: _Signal, h5: h5py.File) -> None:
    for piece in signal.pieces:
        if piece.id.valid and piece.file.filename != h5.filename:
            piece.file.close()


def _find_signal(h5: h5py.File, path: Path, dataset: str | None) -> _Signal:
    if dataset is not None:
        return _from_dataset(h5, path, dataset)
    data = h5.get("/entry/data")
    if isinstance(data, h5py.Group) and _eiger_links(data):
        return _from_eiger(path, data)
    from silx.io.nxdata import get_default

    nx = get_default(h5, validate=True)
    if nx is None:
        listing = "; ".join(_candidates(h5)) or "none"
        raise FileFormatError(
            f"{path}: no @default NXdata (file → NXentry → NXdata) and no Eiger data links; "
            f"give dataset=PATH (--dataset). Datasets of 2+ dims in it: {listing}"
        )
    return _from_nxdata(path, nx.group)


# --------------------------------------------------------------------------- positions


def _kind(signal: _Signal, kind: str | None) -> str:
    ndim = len(signal.shape)
    if kind is not None:
        if kind not in KINDS:
            raise InputError(f"unsupported kind {kind!r}; expected one of {', '.join(KINDS)}")
        if ndim < (2 if kind == "image" else 1):
            raise InputError(f"{signal.where}: a {ndim}-D signal cannot hold {kind}s")
        return kind
    if ndim >= 3 or signal.interpretation == "image":
        return "image"
    if ndim in (1, 2):
        return "spectrum"
    raise FileFormatError(f"{signal.where}: a scalar, not frames")


def _read_axis(h5: h5py.File, label: str, ref: Any) -> tuple[str, str, np.ndarray]:
    name, unit = parse_label(label, what="axes name")
    if isinstance(ref, str):
        obj = h5.get(ref)
        if not isinstance(obj, h5py.Dataset):
            raise FileFormatError(f"{h5.filename}: axes {name!r}: no dataset {ref!r}")
        return name, unit or units_of(obj), np.asarray(obj[()], dtype=np.float64)
    return name, unit, np.asarray(ref, dtype=np.float64)


def _positions(
    h5: h5py.File, signal: _Signal, lead: tuple[int, ...], axes: Any, grid: Any, label: str
) -> Positions:
    n = int(np.prod(lead)) if lead else 1
    if axes is not None and grid is not None:
        raise InputError("give axes or grid, not both")
    if axes is not None:
        if not isinstance(axes, Mapping) or not axes:
            raise InputError(f"axes: expected a dict of name → dataset path, got {axes!r}")
        read = [_read_axis(h5, k, v) for k, v in axes.items()]
        sizes = tuple(v.size for _, _, v in read)
        if len(read) == len(lead) and sizes == lead and all(v.ndim <= 1 for _, _, v in read):
            return Positions([Dim(nm, u, v) for nm, u, v in read], source=f"axes {list(axes)}")
        if all(v.size == n for _, _, v in read):
            values = np.stack([v.ravel() for _, _, v in read], axis=1)
            pos = infer_grid(values, [(nm, u) for nm, u, _ in read], source=f"axes {list(axes)}")
            if len(lead) > 1 and pos.shape != lead:
                raise InputError(
                    f"axes: the read-backs form a {pos.shape} grid; the signal "
                    f"{signal.where} has scan shape {lead}"
                )
            return pos
        raise InputError(
            f"axes: sizes {dict(zip(axes, sizes, strict=True))} fit neither the scan shape {lead} "
            f"of {signal.where} (one 1-D axis per dim) nor its {n} frames (one value per frame)"
        )
    if grid is not None:
        parsed = parse_grid(grid)
        if len(lead) > 1 and tuple(s for _, _, s in parsed) != lead:
            raise InputError(f"grid {grid!r}: the signal {signal.where} has scan shape {lead}")
        return grid_positions(grid, n, what=f"{label}s")
    dims = _nxdata_dims(signal, lead)
    if dims is not None and signal.nxdata is not None:
        return Positions(dims, source=f"NXdata @axes of {signal.nxdata.name}")
    if len(lead) <= 1:
        name = label.capitalize()
        return Positions([Dim(name, "", np.arange(n))], source="index")
    return Positions(
        [Dim(f"Dim{k}", "", np.arange(s)) for k, s in enumerate(lead)], source="signal dimensions"
    )


def _nxdata_dims(signal: _Signal, lead: tuple[int, ...]) -> list[Dim] | None:
    if signal.nxdata is None or not lead or len(signal.axis_names) < len(lead):
        return None
    dims = []
    for name, size in zip(signal.axis_names[: len(lead)], lead, strict=True):
        obj = signal.nxdata.get(name) if name else None
        if not name or not isinstance(obj, h5py.Dataset) or obj.ndim != 1 or obj.shape[0] != size:
            return None
        dims.append(Dim(name, units_of(obj), obj[()]))
    return dims


def _image_geometry_mask(
    signal: _Signal, shape: tuple[int, int], poni: Any, mask: Any, flip: str | None
) -> tuple[Any, str, np.ndarray | None, str]:
    """Geometry and pixel mask of an image signal, and where each came from ("none" if not
    found): the ``poni`` / ``mask`` options, else the NeXus fields of the signal's entry."""
    geometry, geometry_source, mask_arr, mask_source = None, "none", None, "none"
    if poni is not None:
        geometry, geometry_source = poni_geometry(poni, shape, {}), "poni"
    elif signal.entry is not None:
        geometry = nexus_geometry(signal.entry, shape, flip)
        if geometry is not None:
            geometry_source = f"NeXus detector fields of {signal.entry.name}"
    if mask is not None:
        mask_arr, mask_source = load_mask(mask, shape), "mask option"
    elif signal.entry is not None:
        found = pixel_mask(instrument_groups(signal.entry)[1], shape)
        if found is not None:
            mask_arr, mask_source = found
    if mask_arr is not None:
        mask_arr = flip_frame(mask_arr, flip)
    return geometry, geometry_source, mask_arr, mask_source


def _geometry_series(
    signal: _Signal, shape: tuple[int, int], n_frames: int, flip: str | None
) -> tuple[dict[str, Any], str, tuple] | None:
    """The first frame's geometry, its source and :func:`series_extras` of every frame's, when a
    NeXus geometry field holds one value per frame that changes; None otherwise."""
    assert signal.entry is not None
    configs = nexus_geometries(signal.entry, shape, n_frames, flip)
    if configs is None:
        return None
    source = f"NeXus detector fields of {signal.entry.name}, one value per frame"
    series = series_extras(configs, source=source)
    if series is None:
        return None
    return configs[0], f"{source} ({', '.join(series[2])} varies)", series


def _series_extras(pos: Positions, attrs: dict, series: Any) -> tuple[dict, dict]:
    """The per-position datasets (and their attributes) with a geometry series' ones; the
    varying keys go into ``attrs``. Position i holds frame i: the values in frame order."""
    extra, extra_attrs = dict(pos.extra), {}
    if series is not None:
        extra.update(series[0])
        extra_attrs, attrs[VARIES_ATTR] = series[1], series[2]
    return extra, extra_attrs


class _Frames:
    """The frames in position order, by index (so an interrupted translation resumes cheaply):
    decoded arrays (flipped), or with ``chunks`` the stored chunks as they are (:class:`RawChunk`).
    """

    def __init__(
        self,
        signal: _Signal,
        lead: tuple[int, ...],
        frame_shape: tuple[int, ...],
        flip: str | None,
        *,
        chunks: bool = False,
    ) -> None:
        self.signal, self.lead, self.frame_shape = signal, lead, frame_shape
        self.flip, self.chunks = flip, chunks
        self.offsets = np.cumsum([0] + [p.shape[0] for p in signal.pieces])

    def __len__(self) -> int:
        return int(np.prod(self.lead)) if self.lead else 1

    def __getitem__(self, position: int) -> Any:
        pieces = self.signal.pieces
        index: tuple[int, ...]
        if len(self.lead) == 1:
            i = int(np.searchsorted(self.offsets, position, side="right")) - 1
            dset, index = pieces[i], (position - int(self.offsets[i]),)
        else:
            dset, index = pieces[0], tuple(int(k) for k in np.unravel_index(position, self.lead))
        try:
            if self.chunks:
                mask, data = dset.id.read_direct_chunk((*index, 0, 0))
                return RawChunk(bytes(data), int(mask))
            frame = np.empty(self.frame_shape, dtype=dset.dtype)
            dset.read_direct(frame, source_sel=index if index else np.s_[...])
        except (OSError, ValueError, RuntimeError) as err:
            raise FileFormatError(
                f"{dset.file.filename}:{dset.name}: frame {index} cannot be read ({err}); the "
                "file may be truncated or corrupt"
            ) from err
        return flip_frame(frame, self.flip) if len(self.frame_shape) == 2 else frame


def _check_link(link: Any, signal: _Signal, lead: tuple[int, ...], flip: str | None) -> Any:
    """``link`` normalised (False, "chunks", "vds") and checked against the signal."""
    link = check_link(link)
    if link is False:
        return link
    if flip is not None:
        raise InputError(f"link={link!r} keeps the frames as stored: it cannot flip them")
    if len(lead) != 1 or any(p.ndim != 3 for p in signal.pieces):
        raise InputError(
            f"link={link!r} needs (frames, rows, cols) data; {signal.where} is {signal.shape}"
        )
    first = signal.pieces[0]
    for piece in signal.pieces:
        where = f"{piece.file.filename}:{piece.name}"
        if piece.dtype != first.dtype:
            raise InputError(
                f"{where}: dtype {piece.dtype}, not {first.dtype}; link={link!r} needs one dtype"
            )
        if link == "chunks" and piece.chunks != (1, *first.shape[1:]):
            raise InputError(
                f"{where}: chunks {piece.chunks} are not one frame each; "
                "link=True copies whole-frame chunks: use link='vds' or link=False"
            )
        if link == "chunks" and chunk_filters(piece) != chunk_filters(first):
            raise InputError(
                f"{where}: compressed differently from {first.name}; use link='vds' or link=False"
            )
    return link


def _virtual_mappings(signal: _Signal) -> list[VirtualFrames]:
    out, position = [], 0
    for piece in signal.pieces:
        n = int(piece.shape[0])
        out.append(
            VirtualFrames(piece.file.filename, piece.name, tuple(piece.shape), 0, n, position)
        )
        position += n
    return out


# --------------------------------------------------------------------------- translator


class NexusTranslator(Translator):
    """NeXus / HDF5: a dataset, the ``@default`` NXdata, or a Dectris Eiger master file.

    See :meth:`translate` and the module documentation.
    """

    name: ClassVar[str] = "nexus"
    extensions: ClassVar[tuple[str, ...]] = (".nxs", ".nx5", ".h5", ".hdf5", ".hdf")
    description: ClassVar[str] = "NeXus/HDF5 frames: a dataset, the @default NXdata, Eiger masters"

    def can_read(self, path: str | os.PathLike) -> bool:
        """An HDF5 file (signature) whose name ends in one of :attr:`extensions`."""
        try:
            path = Path(path)
            if not (path.is_file() and path.name.lower().endswith(self.extensions)):
                return False
            with open(path, "rb") as handle:
                return handle.read(8) == HDF5_SIGNATURE
        except Exception:  # noqa: BLE001 - can_read never raises
            return False

    # over 80 lines only by its docstring (one entry per option): the code is 65 lines
    def translate(  # type: ignore[override]  # keyword options of this format only
        self,
        sources: str | os.PathLike,
        h5_path: str | os.PathLike,
        *,
        dataset: str | None = None,
        axes: Mapping[str, Any] | None = None,
        grid: Mapping[str, int] | str | None = None,
        kind: str | None = None,
        poni: str | os.PathLike | Mapping[str, Any] | None = None,
        mask: str | os.PathLike | np.ndarray | None = None,
        flip: str | None = None,
        dummy: float | None = None,
        link: bool | str = False,
        overwrite: bool = False,
        compression: str | None = "bslz4",
        progress: bool = False,
        resume: bool = True,
    ) -> Path:
        """Write the frames of a NeXus/HDF5 file as one USID file.

        Parameters
        ----------
        sources : str or path
            One HDF5 file (an Eiger master file: its data files are found through its links).
        h5_path : str or path
            The USID HDF5 file to write.
        dataset : str, optional
            Path of the dataset of frames (or of an NXdata group) inside the file. Default: the
            Eiger data links, else the ``@default`` NXdata.
        axes : dict, optional
            Position dims slow to fast: name (optionally ``"Y[mm]"``) → dataset path in the file
            (or an array): 1-D values per scan dim, or one read-back per frame (grid inferred).
        grid : dict or str, optional
            ``{"Y": 6, "X": 8}`` or ``"Y=6,X=8"``: index dims over the frames, slow to fast.
        kind : {"image", "spectrum"}, optional
            What one frame is (default from the signal's rank and ``@interpretation``).
        poni : path or dict, optional
            pyFAI geometry; default: from the NeXus detector fields when all are present.
        mask : path or ndarray, optional
            (rows, cols), nonzero = masked, orientation of the file; default: the detector's
            ``pixel_mask`` when present.
        flip : {None, "ud", "lr"}
            Store frames (and mask, and the beam centre read from the file) flipped.
        dummy : float, optional
            Value of invalid pixels, recorded as the ``dummy`` attribute; default: the
            NXdetector's, when its ``saturation_value`` / ``underload_value`` leave exactly
            one value of the integer dtype invalid (``nexus_geometry.invalid_value``).
        link : {False, True, "chunks", "vds"}
            False: decode the frames and encode them again (``compression``). True or
            ``"chunks"``: copy the compressed chunks as they are stored (one frame per chunk, one
            filter pipeline, e.g. Eiger bitshuffle-LZ4: no decoding, the fastest). ``"vds"``: a
            virtual ``Raw_Data`` over the source datasets (nothing copied; the sources must stay
            where they are, relative to the output). Neither flips.
        overwrite : bool
            Replace an existing ``h5_path``; otherwise refuse.
        compression : {"bslz4", "gzip", "none"}
            Of ``Raw_Data`` when ``link`` is False.
        progress : bool
            Show a progress bar.
        resume : bool
            Continue an interrupted translation of the same source and options (default).

        Returns
        -------
        Path
            ``h5_path``; the file appears only once complete.

        Raises
        ------
        ExistingResultsError
            ``h5_path`` exists and ``overwrite`` is false.
        InputError
            Bad options, axes or grid that do not fit the signal.
        FileFormatError
            Not HDF5, no such dataset (the message names file and path, and lists datasets), no
            ``@default`` NXdata, a missing Eiger data file (named), an unusable signal.
        """
        import hdf5plugin  # noqa: F401  (compressed sources: bitshuffle-LZ4, LZ4, blosc …)

        h5_path = check_output(h5_path, overwrite)
        path = single_source(sources, "nexus", "an HDF5 file")
        flip = check_flip(flip)
        compression_options(compression)
        if not path.is_file():
            raise FileFormatError(f"{path}: no such file")
        try:
            h5 = h5py.File(path, "r")
        except OSError as err:
            raise FileFormatError(f"{path}: not an HDF5 file h5py can open ({err})") from err
        signal = None
        pending = None
        try:
            signal = _find_signal(h5, path, dataset)
            if check_link(link) == "vds":  # hash the sources while their frames are read
                pending = PendingRecords([path, *signal.files])
            spec, lead, frame_shape = self._spec(
                h5,
                path,
                signal,
                axes,
                grid,
                kind,
                poni,
                mask,
                flip,
                dummy,
                dataset,
                compression,
                pending,
            )
            link = _check_link(link, signal, lead, flip)
            spec.attrs["link"] = str(link)
            if link == "chunks":
                spec.raw_filters = chunk_filters(signal.pieces[0])
            logger.info(
                "translating %s frames of %s from %s into %s",
                spec.n_positions,
                frame_shape,
                signal.where,
                h5_path,
            )
            if link == "vds":
                return write_virtual_measurement(
                    h5_path,
                    spec,
                    _virtual_mappings(signal),
                    overwrite=overwrite,
                    sources=None if pending is None else pending.result,
                )
            return write_measurement(
                h5_path,
                spec,
                _Frames(signal, lead, frame_shape, flip, chunks=link == "chunks"),
                compression=compression,
                overwrite=overwrite,
                progress=progress,
                resume=resume,
            )
        finally:
            if pending is not None:
                pending.close()
            if signal is not None:
                _close_pieces(signal, h5)
            h5.close()

    def _spec(
        self,
        h5,
        path,
        signal,
        axes,
        grid,
        kind,
        poni,
        mask,
        flip,
        dummy,
        dataset,
        compression,
        pending=None,
    ) -> tuple[MeasurementSpec, tuple[int, ...], tuple[int, ...]]:
        """The measurement spec; with ``pending`` (:class:`PendingRecords` of the source files,
        under way) its ``sources`` are left for the writer to fill in."""
        kind = _kind(signal, kind)
        shape = signal.shape
        n_frame = 2 if kind == "image" else 1
        frame_shape = tuple(int(s) for s in shape[len(shape) - n_frame :])
        lead = tuple(int(s) for s in shape[: len(shape) - n_frame])
        if signal.dtype.kind not in "uif":
            raise FileFormatError(f"{signal.where}: dtype {signal.dtype}; expected numbers")
        pos = _positions(h5, signal, lead, axes, grid, kind)
        if pos.n_positions != (int(np.prod(lead)) if lead else 1):
            raise InputError(
                f"{signal.where}: {pos.n_positions} positions for the scan shape {lead}"
            )
        geometry, geometry_source, mask_arr, mask_source = None, "none", None, "none"
        series: Any = None
        if kind == "image":
            image_shape = (frame_shape[0], frame_shape[1])
            geometry, geometry_source, mask_arr, mask_source = _image_geometry_mask(
                signal, image_shape, poni, mask, flip
            )
            if poni is None and signal.entry is not None:  # a geometry field per frame
                series = _geometry_series(signal, image_shape, int(np.prod(lead)), flip)
                if series is not None:
                    geometry, geometry_source, series = series
            spec_dims = image_dims(frame_shape)
        else:
            if any(v is not None for v in (poni, mask, flip)):
                raise InputError(
                    f"{signal.where}: poni, mask and flip apply to images, not spectra"
                )
            spec_dims = [Dim("Channel", "channel", np.arange(frame_shape[0]))]
        if pending is None:
            records = [file_record(path)] + [file_record(f) for f in signal.files]
        attrs: dict[str, Any] = {
            **self.provenance(),
            "versions": versions("silx"),
            "sources": records if pending is None else [],  # the writer's, once hashed
            "n_sources": len(records) if pending is None else len(pending),
            "nexus_signal": signal.where,
            "kind": kind,
            "positions_source": pos.source,
            "geometry_source": geometry_source,
            "mask_source": mask_source,
            "orientation": orientation(flip, False),
            "flip": flip or "none",
            "options": {
                "dataset": dataset,
                "axes": describe(axes),
                "grid": describe(grid),
                "kind": kind,
                "poni": describe(poni),
                "mask": describe(mask),
                "flip": flip,
                "dummy": dummy,
                "compression": compression,
            },
        }
        if dummy is not None:
            attrs["dummy"], attrs["dummy_source"] = float(dummy), "dummy option"
        elif kind == "image" and signal.entry is not None:
            found = invalid_value(instrument_groups(signal.entry)[1], signal.dtype)
            if found is not None:  # the file's own invalid value (NXdetector fields)
                attrs["dummy"], attrs["dummy_source"] = found
        if pos.extra_units:
            attrs["measured_units"] = pos.extra_units
        extra, extra_attrs = _series_extras(pos, attrs, series)
        spec = MeasurementSpec(
            position_dims=pos.dims,
            spec_dims=spec_dims,
            dtype=signal.dtype,
            position_values=pos.values,
            attrs=attrs,
            geometry=geometry,
            mask=mask_arr,
            extra=extra,
            extra_attrs=extra_attrs,
        )
        return spec, lead, frame_shape
