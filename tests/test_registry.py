"""The registries of translators and processing steps: one declaration each, one name each."""

from __future__ import annotations

import argparse
import configparser
import importlib
import importlib.metadata
import importlib.util
import logging
from pathlib import Path

import pytest

from pyscatter import registry
from pyscatter.cli import SUBCOMMANDS, _parser, commands
from pyscatter.errors import InputError
from pyscatter.processes import registry as processes
from pyscatter.translators import base as translators

ROOT = Path(__file__).resolve().parents[1]


def fake_entry_points(monkeypatch, group: str, *points: tuple[str, str]) -> None:
    """Make ``points`` (name, "module:attr") the entry points of ``group``."""
    real = importlib.metadata.entry_points

    def fake(**kwargs):
        if kwargs.get("group") == group:
            return [importlib.metadata.EntryPoint(n, v, group) for n, v in points]
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)


# --------------------------------------------------------------------------- processes


@pytest.mark.parametrize("step", list(processes.BUILTIN_PROCESSES))
def test_process_name_of_every_builtin(step):
    entry = processes.BUILTIN_PROCESSES[step]
    cls = processes.get_process(step)
    assert entry.process_name == cls.process_name
    assert processes.process_name_of(step) == cls.process_name
    assert processes.process_name_of(cls.process_name) == cls.process_name  # passes through
    assert entry.origin == registry.BUILT_IN
    assert importlib.util.find_spec(entry.cli) is not None


def test_names_are_unique_and_unknown_ones_pass_through():
    entries = processes.BUILTIN_PROCESSES.values()
    names = [e.process_name for e in entries]
    assert len(set(names)) == len(names)
    assert not set(names) & set(processes.BUILTIN_PROCESSES)
    assert processes.process_name_of("NoSuchProcess") == "NoSuchProcess"
    with pytest.raises(InputError, match=r"unknown step 'integral'; expected one of integrate,"):
        processes.get_process("integral")


def test_commands_are_the_registry_steps_between_the_others():
    found = commands()
    assert tuple(found) == SUBCOMMANDS
    steps = list(processes.BUILTIN_PROCESSES)
    assert SUBCOMMANDS[1 : 1 + len(steps)] == tuple(steps)
    for step in steps:
        assert found[step] == processes.BUILTIN_PROCESSES[step].cli
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == list(SUBCOMMANDS)


def test_plugin_steps_and_name_clashes(monkeypatch, caplog, capsys):
    fake_entry_points(
        monkeypatch,
        processes.ENTRY_POINT_GROUP,
        ("integrate", "pyscatter.processes.integration:AzimuthalIntegration"),  # old metadata
        ("fit", "elsewhere:OtherFit"),
        ("run", "elsewhere:Runner"),
        ("extra", "elsewhere.module:Extra"),
    )
    with caplog.at_level(logging.WARNING):
        found = processes.available_processes()
    assert list(found)[-2:] == ["extra", "run"]
    assert found["fit"] is processes.BUILTIN_PROCESSES["fit"]
    assert found["extra"].cli is None and found["extra"].process_name is None
    assert "step plugin 'fit' (elsewhere:OtherFit" in caplog.text
    assert "'integrate'" not in caplog.text
    # a plugin that cannot be imported: its class name stands for its process name
    assert processes.process_name_of("extra") == "Extra"
    with pytest.raises(InputError, match=r"step 'extra' \(elsewhere.module:Extra\) is not avail"):
        processes.get_process("extra")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        cli = commands()
    assert cli["extra"] is None and cli["run"] == "pyscatter.cli.run"
    assert "plugin step 'run' has no command" in caplog.text
    from pyscatter.cli import main

    assert main(["--help"]) == 0
    assert "plugin step elsewhere.module:Extra" in capsys.readouterr().out


# --------------------------------------------------------------------------- translators


def test_builtin_translators_are_declared_in_code_only():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    points = parser["options.entry_points"]
    assert translators.ENTRY_POINT_GROUP not in points
    assert processes.ENTRY_POINT_GROUP not in points
    entries = translators.translator_entries()
    assert list(entries)[: len(translators.BUILTIN_TRANSLATORS)] == list(
        translators.BUILTIN_TRANSLATORS
    )
    for name, cls in translators.available_translators().items():
        assert cls.name == name


def test_broken_translator_plugin_is_named(monkeypatch):
    fake_entry_points(monkeypatch, translators.ENTRY_POINT_GROUP, ("ghost", "no_such_xyz:Ghost"))
    assert "ghost" in translators.translator_entries()
    assert "ghost" not in translators.available_translators()
    with pytest.raises(InputError, match=r"format 'ghost' \(no_such_xyz:Ghost\) is not avail"):
        translators.get_translator("ghost")
    with pytest.raises(InputError, match=r"unknown format 'x'; installed formats: id02, .*ghost"):
        translators.get_translator("x")


# --------------------------------------------------------------------------- shared helper


def test_load_and_errors():
    assert registry.load("os.path:join") is importlib.import_module("os.path").join
    assert registry.load("pyscatter.registry:Entry.attr") is registry.Entry.attr
    with pytest.raises(ValueError, match="not of the form 'module:attr'"):
        registry.load("os.path.join")
    with pytest.raises(AttributeError):
        registry.load("os.path:no_such_name")
    err = registry.unknown_name("thing", "x", [], hint="; see the docs")
    assert str(err) == "unknown thing 'x'; expected one of (none installed); see the docs"


# --------------------------------------------------------------------------- model names


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("maier_saupe", "maier_saupe"),
        ("maier-saupe", "maier_saupe"),
        ("Maier-Saupe", "maier_saupe"),
        ("pseudo-voigt", "pseudo_voigt"),
        ("pseudo_voigt", "pseudo_voigt"),
    ],
)
def test_fit_model_names_are_canonical(given, canonical):
    from pyscatter.kernels.models import MODELS
    from pyscatter.processes.fitting import model_name

    assert canonical in MODELS and model_name(given) == canonical
    args = _parser().parse_args(["fit", "x.h5", "--model", given])
    assert args.model == canonical
    assert _parser().parse_args(["fit", "x.h5"]).model == "maier_saupe"


def test_fit_model_help_and_refusal(capsys):
    from pyscatter.cli import main
    from pyscatter.kernels.models import MODELS
    from pyscatter.pipeline import EXAMPLE

    assert main(["fit", "--help"]) == 0
    assert f"profile model: {', '.join(MODELS)}" in " ".join(capsys.readouterr().out.split())
    assert main(["fit", "x.h5", "--model", "gauss"]) == 2
    err = capsys.readouterr().err
    assert f"invalid choice: 'gauss' (choose from {', '.join(map(repr, MODELS))})" in err
    assert "fit: {model: maier_saupe}" in EXAMPLE
