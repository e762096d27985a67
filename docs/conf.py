"""Sphinx configuration of the pyscatter documentation (``make docs``: warnings are errors).

Pages are Markdown (MyST); the notebooks of ``notebooks/`` are rendered by myst-nb through the
``docs/notebooks`` symbolic link; the API reference is autodoc + numpydoc; the command-line
reference is generated from the argparse parser by ``_ext/pyscatter_cli.py``.

Notebook execution: ``make test`` executes every notebook (pytest --nbmake), so the docs build
does not have to. By default the docs execute the short notebooks once and cache their outputs
(``docs/_build/.jupyter_cache``), so the pages show the figures; ``04_resume_and_dask`` (kills a
job, starts a dask cluster) is shown without outputs. Set ``PYSCATTER_DOCS_EXECUTE=off`` for a
build that executes nothing, or ``force`` to re-execute everything.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import pyscatter  # noqa: E402  (its version below; registers the HDF5 filters)

# numexpr announces its thread count at INFO, traitlets every notebook it executes, and silx
# that pyopencl (optional) is missing
logging.getLogger("numexpr").setLevel(logging.WARNING)
logging.getLogger("traitlets").setLevel(logging.WARNING)
logging.getLogger("silx.opencl").setLevel(logging.ERROR)

# -- project ---------------------------------------------------------------------------------
project = "pyscatter"
author = "the pyscatter developers"
copyright = "the pyscatter developers, MIT licence"  # noqa: A001
release = pyscatter.__version__
version = ".".join(release.split(".")[:2])

# -- extensions ------------------------------------------------------------------------------
extensions = [
    "myst_nb",  # Markdown pages (myst-parser) and notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "pyscatter_cli",  # the ``pyscatter-cli`` directive (docs/_ext)
]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "**.ipynb_checkpoints",
]
templates_path: list[str] = []

# -- HTML ------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"pyscatter {release}"
html_static_path = ["_static"]

# -- MyST / myst-nb --------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath", "fieldlist"]
myst_heading_anchors = 3
_EXECUTE = os.environ.get("PYSCATTER_DOCS_EXECUTE", "cache")
if _EXECUTE not in ("off", "cache", "force", "auto"):
    raise ValueError(f"PYSCATTER_DOCS_EXECUTE={_EXECUTE!r}; expected off, cache, force or auto")
nb_execution_mode = _EXECUTE
nb_execution_timeout = 300
nb_execution_raise_on_error = True  # a notebook that fails fails the build
nb_execution_show_tb = True
# killing a job and starting a dask cluster is slow and tested by `make test` (nbmake)
nb_execution_excludepatterns = ["*04_resume_and_dask*"]
nb_merge_streams = True

# -- autodoc / numpydoc ----------------------------------------------------------------------
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc Parameters sections carry the types
autodoc_mock_imports: list[str] = []
numpydoc_show_class_members = False  # members are documented by autodoc, not listed twice
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()  # report style with `numpydoc lint`, never here
nitpicky = False

# no intersphinx: the build machine may be offline, and an unreachable inventory is a warning


# -- docstring preprocessing -------------------------------------------------------------------
# numpydoc turns the sections of function and class docstrings into rubrics, but leaves module
# docstrings to docutils, for which "Examples\n--------" is a document section: two modules on
# one page then give duplicate "examples" targets. Render module sections as rubrics, as numpydoc
# does everywhere else.
_UNDERLINE = re.compile(r"^\s*(-{3,}|={3,})\s*$")

# Shapes are written in numpy's unpacking notation, "(*position dims, rows, cols)": for docutils
# an asterisk opening a word starts emphasis, and an unclosed one is a warning. Escape an
# asterisk after "(" or ", " that opens a word no asterisk closes later on the line.
_UNPACK = re.compile(r"(?:(?<=[(\[])|(?<=, ))\*(?=[A-Za-z_])")
_CLOSES = re.compile(r"\w\*(?!\w)")
_LITERAL = re.compile(r"``.+?``")


def _module_sections(lines: list[str]) -> None:
    for i in range(len(lines) - 1, 0, -1):
        title = lines[i - 1].strip()
        if (
            _UNDERLINE.match(lines[i])
            and title
            and len(lines[i].strip()) >= len(title)
            and not title.startswith((">>>", "..."))
        ):
            lines[i - 1 : i + 1] = [f".. rubric:: {title}", ""]


def _escape_unpacking(lines: list[str]) -> None:
    literal_indent = None  # inside an indented literal block (after "::")
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if literal_indent is not None:
            if stripped and indent <= literal_indent:
                literal_indent = None
            else:
                continue
        if not stripped.startswith(">>>"):  # doctests are left alone
            literals = [m.span() for m in _LITERAL.finditer(line)]
            out, last = [], 0
            for match in _UNPACK.finditer(line):
                inside = any(a <= match.start() < b for a, b in literals)
                if inside or _CLOSES.search(line, match.end()):
                    continue
                out.append(line[last : match.start()] + "\\*")
                last = match.end()
            lines[i] = "".join(out) + line[last:]
        if line.rstrip().endswith("::"):
            literal_indent = indent


def _preprocess(app, what, name, obj, options, lines):
    if what == "module":
        _module_sections(lines)
    _escape_unpacking(lines)


def setup(app):
    # before numpydoc (priority 500) reads the sections
    app.connect("autodoc-process-docstring", _preprocess, priority=400)
