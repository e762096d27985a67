"""``pyscatter demo [DIR]``: the embedded synthetic scan, translated, integrated and plotted."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("pyscatter")


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="translate → integrate → plot the embedded default data set",
        description=__doc__,
    )
    p.add_argument("directory", nargs="?", default="out", help="where to write (default: out/)")
    p.add_argument("--n-jobs", type=int, default=1)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pyscatter import datasets
    from pyscatter.processes.base import run_on_file
    from pyscatter.processes.integration import AzimuthalIntegration
    from pyscatter.translators import translate

    out = Path(args.directory)
    out.mkdir(parents=True, exist_ok=True)
    scan = datasets.demo_scan()
    images = out / "frames"
    files = scan.write_images(images)
    poni = scan.write_poni(out / "demo.poni")
    h5_path = out / "demo_scan.h5"
    translate(
        [str(f) for f in files],
        h5_path,
        format="images",
        positions=str(images / "positions.csv"),
        poni=str(poni),
        mask=str(images / "mask.edf"),
        overwrite=True,
    )
    log.info("translated %d frames into %s", len(files), h5_path)
    summary = run_on_file(
        h5_path,
        AzimuthalIntegration,
        npt=300,
        unit="q_nm^-1",
        error_model="poisson",
        polarization_factor=scan.polarization_factor,
        n_jobs=args.n_jobs,
        progress=False,
        override=True,
    )
    png = out / "demo_iq.png"
    plot_iq(h5_path, png)
    print(f"file:    {h5_path}  ({summary.group})")
    print(f"figure:  {png}")
    print(f"frames:  {images}/ ({len(files)} EDF files, positions.csv, mask.edf)")
    return 0


def plot_iq(h5_path: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from pyscatter import to_xarray

    ds = to_xarray(h5_path, "AzimuthalIntegration")
    intensity = ds["Intensity"]
    q = intensity.dims[-1]
    flat = intensity.stack(position=[d for d in intensity.dims if d != q])
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.2))
    qv = ds[q].values
    values = flat.transpose("position", q).values
    positive = values[np.isfinite(values) & (values > 0)]
    image = np.log10(np.clip(values, positive.min(), None))
    low, high = np.percentile(image[np.isfinite(image)], [1, 99.9])
    mesh = ax0.pcolormesh(
        qv, np.arange(image.shape[0]), image, shading="nearest", vmin=low, vmax=high
    )
    fig.colorbar(mesh, ax=ax0, label="log10 I")
    ax0.set_xlabel(f"{q} [{ds[q].attrs['units']}]")
    ax0.set_ylabel("position (slow → fast)")
    ax0.set_title("I(q) at every scan position")
    mean = flat.mean("position")
    ax1.semilogy(qv, mean.values)
    ax1.set_xlabel(f"{q} [{ds[q].attrs['units']}]")
    ax1.set_ylabel("mean I [a.u.]")
    ax1.set_title("mean over the scan")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
