"""Sphinx directive ``pyscatter-cli``: the command-line reference, generated from argparse.

The directive builds the parser of ``pyscatter`` (:func:`pyscatter.cli._parser`, the same the
command uses) and renders, for the launcher and then for every subcommand in the order of
``pyscatter.cli.SUBCOMMANDS``, a section ``pyscatter <command>`` holding the one-line help and
the full ``--help`` text as a literal block. The reference therefore cannot drift from the code:
a new option or subcommand appears at the next docs build.

Usage (MyST)::

    ```{pyscatter-cli}
    ```

Help texts are formatted for 88 columns whatever the terminal of the build.

``pyscatter-pipeline-example`` renders :data:`pyscatter.pipeline.EXAMPLE` (the template
``pyscatter run --example`` prints) as a YAML block.
"""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

WIDTH = "88"


@contextmanager
def _columns(width: str):
    """argparse wraps help to ``$COLUMNS - 2``: fix it for reproducible pages."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = width
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def _subparsers(parser: argparse.ArgumentParser) -> tuple[dict, dict]:
    """``{name: subparser}`` and ``{name: one-line help}`` of the launcher."""
    for action in parser._actions:  # argparse keeps no public accessor for them
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return dict(action.choices), helps
    return {}, {}


def _section(doc, name: str, title: str, summary: str, text: str) -> nodes.section:
    section = nodes.section(ids=[nodes.make_id(name)], names=[nodes.fully_normalize_name(name)])
    section += nodes.title(text=title)
    if summary:
        section += nodes.paragraph(text=summary[0].upper() + summary[1:] + ".")
    block = nodes.literal_block(text, text)
    block["language"] = "text"
    section += block
    doc.note_implicit_target(section)
    return section


class PyscatterCli(SphinxDirective):
    """Render ``pyscatter --help`` and ``pyscatter <command> --help`` for every command."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from pyscatter.cli import SUBCOMMANDS, _parser

        with _columns(WIDTH):
            parser = _parser()
            subparsers, helps = _subparsers(parser)
            out = [
                _section(
                    self.state.document,
                    "cli-pyscatter",
                    "pyscatter",
                    "",
                    parser.format_help(),
                )
            ]
            for name in SUBCOMMANDS:
                sub = subparsers[name]
                out.append(
                    _section(
                        self.state.document,
                        f"cli-{name}",
                        f"pyscatter {name}",
                        helps.get(name, ""),
                        sub.format_help(),
                    )
                )
        from pyscatter.cli import commands

        modules = {m for n, m in commands().items() if m is not None and n in SUBCOMMANDS}
        for module in ("pyscatter.cli", *sorted(modules)):
            self.env.note_dependency(_module_file(module))
        return out


class PipelineExample(SphinxDirective):
    """The commented pipeline template (``pyscatter run --example``) as a YAML block."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from pyscatter import pipeline

        block = nodes.literal_block(pipeline.EXAMPLE, pipeline.EXAMPLE)
        block["language"] = "yaml"
        self.env.note_dependency(pipeline.__file__ or "")
        return [block]


def _module_file(module: str) -> str:
    import importlib

    return importlib.import_module(module).__file__ or ""


def setup(app):
    app.add_directive("pyscatter-cli", PyscatterCli)
    app.add_directive("pyscatter-pipeline-example", PipelineExample)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
