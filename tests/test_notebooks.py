"""The notebooks are stored clean and all of them are in the documentation.

They are executed by ``pytest --nbmake notebooks/`` (``make test``); these checks are fast:
every notebook is valid nbformat 4 with a Python 3 kernel, carries no outputs (so the repository
stays small and diffs stay readable: clear them before committing), and is listed in the docs
(``docs/index.md``), which render them with myst-nb.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    for expected in (
        "01_quickstart.ipynb",
        "02_field_series_id02.ipynb",
        "03_orientation_figure.ipynb",
        "04_resume_and_dask.ipynb",
    ):
        assert expected in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_and_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code"
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.outputs]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"
    assert all(c.execution_count is None for c in code), f"{path.name}: execution counts stored"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_the_docs(path):
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert f"notebooks/{path.stem}" in index, (
        f"add notebooks/{path.stem} to a toctree of docs/index.md"
    )
