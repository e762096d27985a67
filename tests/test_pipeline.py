"""YAML pipelines: validation with file and line, resumable runs, the translate skip rule."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

import pyscatter
from pyscatter.errors import InputError
from pyscatter.pipeline import EXAMPLE, run_pipeline, validate_pipeline
from pyscatter.processes import registry
from pyscatter.processes.base import run_on_file
from pyscatter.processes.integration import AzimuthalIntegration

SIMPLE = """\
output: scan.h5
translate:
  format: images
  sources: frames/frame_*.edf
  positions: frames/positions.csv
  poni: demo.poni
  mask: frames/mask.edf
execution:
  progress: false
  max_mem_mb: 1.0
steps:
  - integrate: {npt: 64, unit: q_nm^-1, error_model: poisson, polarization_factor: 0.99}
"""
INTEGRATE = dict(npt=64, unit="q_nm^-1", error_model="poisson", polarization_factor=0.99)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Images of a (2, 3) oriented map with positions.csv, mask.edf and demo.poni."""
    from pyscatter import datasets

    folder = tmp_path_factory.mktemp("template")
    scan = datasets.oriented_map((2, 3), rng=5)
    scan.write_images(folder / "frames")
    scan.write_poni(folder / "demo.poni")
    return folder


@pytest.fixture()
def work(template, tmp_path):
    folder = tmp_path / "work"
    shutil.copytree(template, folder)
    return folder


@pytest.fixture(scope="module")
def done(template, tmp_path_factory):
    """The template after one run of SIMPLE (translated and integrated), and its summaries."""
    root = tmp_path_factory.mktemp("done")
    folder = root / "work"
    shutil.copytree(template, folder)
    summaries = run_pipeline(_write(folder, SIMPLE))
    assert [s.action for s in summaries] == ["translated", "computed"]
    shutil.copytree(folder, root / "pristine")
    return folder, summaries


@pytest.fixture()
def ran(done):
    """``done`` restored in place (the translation records absolute source paths)."""
    folder, summaries = done
    shutil.rmtree(folder)
    shutil.copytree(folder.parent / "pristine", folder)
    return folder, summaries


def _write(folder, text, name="pipeline.yaml"):
    path = folder / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_step_and_loads_lazily():
    names = registry.available_processes()
    assert list(names)[:8] == [
        "integrate",
        "profiles",
        "sectors",
        "fit",
        "order",
        "decompose",
        "cluster",
        "peaks",
    ]
    assert registry.get_process("integrate") is AzimuthalIntegration
    for step, entry in names.items():  # the recorded names match the classes that exist
        try:
            cls = registry.get_process(step)
        except InputError as err:
            assert "is not available here" in str(err)
            continue
        assert cls.process_name == entry.process_name
    with pytest.raises(InputError, match="unknown step 'integral'; expected one of integrate,"):
        registry.get_process("integral")


def test_step_whose_module_is_missing(monkeypatch):
    ghost = registry.ProcessEntry("ghost", "pyscatter.processes.ghost:Ghost", "Ghost")
    monkeypatch.setitem(registry.BUILTIN_PROCESSES, "ghost", ghost)
    text = "output: x.h5\nsteps:\n  - ghost: {}\n"
    with pytest.raises(
        InputError,
        match=r"pipeline:3: step 'ghost' \(pyscatter.processes.ghost"
        r":Ghost\) is not available here: ModuleNotFoundError",
    ):
        validate_pipeline(text, check_files=False)


# --------------------------------------------------------------------------- validation


def test_example_is_valid():
    pipe = validate_pipeline(EXAMPLE, check_files=False)
    assert [s.name for s in pipe.steps] == ["integrate", "profiles", "fit", "order"]
    assert pipe.translate.format == "images"
    assert pipe.execution == {"n_jobs": 1, "max_mem_mb": 512, "progress": True}
    assert pipe.steps[0].params["npt"] == 300


def test_yaml_exponent_without_dot_is_a_number():
    # YAML 1.1 (PyYAML) reads 1e-3 as text; a float parameter takes it as the number
    text = "output: x.h5\nsteps:\n  - fit: {isotropy_alpha: 1e-3}\n  - fit: {max_iter: 1e2}\n"
    with pytest.raises(InputError, match=r"pipeline:4: max_iter: expected an integer, got '1e2'"):
        validate_pipeline(text, check_files=False)
    pipe = validate_pipeline(text.split("  - fit: {max")[0], check_files=False)
    assert pipe.steps[0].params == {"isotropy_alpha": 1e-3}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            SIMPLE + "color: red\n",
            "pipeline.yaml:13: unknown key 'color'; allowed: output, translate, execution, steps",
        ),
        (
            SIMPLE.replace("npt: 64", "npts: 64"),
            "pipeline.yaml:12: step 'integrate' "
            "(AzimuthalIntegration) has no parameter 'npts'; its parameters are: npt, unit,",
        ),
        (
            SIMPLE.replace("npt: 64", "npt: many"),
            "pipeline.yaml:12: npt: expected an integer, got 'many'",
        ),
        (
            SIMPLE.replace("frame_*.edf", "shot_*.edf"),
            "pipeline.yaml:4: sources: no file matches the pattern",
        ),
        (SIMPLE.replace("demo.poni", "missing.poni"), "pipeline.yaml:6: poni: no such file"),
        (
            SIMPLE.replace("positions:", "position:"),
            "pipeline.yaml:5: format 'images' has no "
            "parameter 'position'; its parameters are: positions, motors",
        ),
        (
            SIMPLE.replace("- integrate:", "- integral:"),
            "pipeline.yaml:12: unknown step 'integral'; expected one of integrate, profiles",
        ),
        (
            SIMPLE.replace("npt: 64", "npt: 64, n_jobs: 2"),
            "pipeline.yaml:12: n_jobs is an execution option: put it under execution:",
        ),
        (
            SIMPLE.replace("progress: false", "progress: 'no'"),
            "pipeline.yaml:9: progress: expected true or false, got 'no'",
        ),
        (
            SIMPLE.replace(
                "max_mem_mb: 1.0", "max_mem_mb: 1.0\n  cluster: {kind: slurm, cores: 4}"
            ),
            "pipeline.yaml:11: cluster: missing memory",
        ),
        (
            SIMPLE.replace("max_mem_mb: 1.0", "max_mem_mb: 1.0\n  read_ahead: maybe"),
            "pipeline.yaml:11: read_ahead: expected true or false, got 'maybe'",
        ),
        (
            SIMPLE.replace("max_mem_mb: 1.0", "max_mem_mb: 1.0\n  n_job: 2"),
            "pipeline.yaml:11: unknown execution option 'n_job'; allowed: n_jobs, scheduler",
        ),
        (
            SIMPLE.replace("format: images", "format: images\n  format: auto"),
            "pipeline.yaml:4: duplicate key 'format'",
        ),
        (
            SIMPLE.replace("  - integrate:", "  - integrate: {npt: 64}\n    fit:"),
            "pipeline.yaml:12: step 1: expected one `name: {parameters}` mapping",
        ),
        (
            SIMPLE.replace("steps:\n", "steps: [\n"),
            "pipeline.yaml:12: not valid YAML: expected the node content",
        ),
        ("output: scan.h5\nsteps: []\n", "pipeline.yaml:1: output "),
    ],
)
def test_invalid_pipelines_name_file_and_line(work, text, expected):
    path = _write(work, text)
    with pytest.raises(InputError) as info:
        validate_pipeline(path)
    assert expected.replace("pipeline.yaml", str(path)) in str(info.value)


def test_all_problems_in_one_message(work):
    text = SIMPLE.replace("npt: 64", "npts: 64").replace("progress: false", "progress: 1")
    with pytest.raises(InputError) as info:
        validate_pipeline(_write(work, text))
    lines = str(info.value).splitlines()
    assert [line.split(":")[1] for line in lines] == ["9", "12"]


def test_nothing_runs_when_a_later_step_is_invalid(work):
    path = _write(work, SIMPLE + "  - fit: {model: 3}\n")
    with pytest.raises(InputError, match=":13: model: expected a text, got 3"):
        run_pipeline(path)
    assert not (work / "scan.h5").exists()


# --------------------------------------------------------------------------- running


def test_example_runs_and_equals_direct_calls(work):
    """The template, as printed, on the demo layout: four steps, then the same calls by hand."""
    path = _write(work, EXAMPLE.replace("progress: true", "progress: false"))
    summaries = run_pipeline(path)
    assert [(s.step, s.action) for s in summaries] == [
        ("translate", "translated"),
        ("integrate", "computed"),
        ("profiles", "computed"),
        ("fit", "computed"),
        ("order", "computed"),
    ]
    assert [s.line for s in summaries] == [9, 26, 27, 28, 29]
    assert all(s.computed_positions == 6 for s in summaries[1:])
    # the same parameters through the API hash to the same results: reused, not recomputed
    direct = run_on_file(
        work / "scan.h5",
        AzimuthalIntegration,
        npt=300,
        unit="q_nm^-1",
        error_model="poisson",
        polarization_factor=0.99,
        progress=False,
    )
    assert direct.reused and direct.group == summaries[1].target
    order = pyscatter.to_xarray(work / "scan.h5", "OrderParameter")
    assert order["S"].dims == ("Y", "X", "ring") and np.isfinite(order["S"].values).all()


def test_rerun_skips_translation_and_reuses_steps(ran):
    work, first = ran
    path = work / "pipeline.yaml"
    with h5py.File(work / "scan.h5", "r") as h5:
        created = h5["Measurement_000"].attrs["created"]
    second = run_pipeline(path)
    assert [s.action for s in second] == ["skipped", "reused"]
    assert second[1].target == first[1].target
    with h5py.File(work / "scan.h5", "r") as h5:
        assert h5["Measurement_000"].attrs["created"] == created  # not rewritten


def test_interrupted_step_resumes_bit_identical(ran):
    from pyscatter.io.record import FLAGS

    work, first = ran
    path = work / "pipeline.yaml"
    with h5py.File(work / "scan.h5", "r+") as h5:
        group = h5[first[1].target]
        before = group["Intensity"][()]
        per_block = int(group.attrs["positions_per_chunk"])  # max_mem_mb 1.0: a few blocks
        assert group[FLAGS].shape[0] > 2
        group[FLAGS][1:] = 0  # as if killed after the first block
        group["Intensity"][per_block:] = 0
    summaries = run_pipeline(path)
    assert [s.action for s in summaries] == ["skipped", "resumed"]
    assert summaries[1].computed_positions == len(before) - per_block
    with h5py.File(work / "scan.h5", "r") as h5:
        np.testing.assert_array_equal(h5[first[1].target]["Intensity"][()], before)


def test_changed_source_refused_then_overwritten(ran):
    import fabio

    work, _ = ran
    path = work / "pipeline.yaml"
    frame = work / "frames" / "frame_0001.edf"
    image = fabio.open(str(frame))
    image.data = image.data + 1  # same size, other content
    image.write(str(frame))
    with pytest.raises(InputError) as info:
        run_pipeline(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: ")
    assert "frame_0001.edf changed (sha256 differs)" in message
    assert "overwrite: true" in message
    text = SIMPLE.replace("format: images", "format: images\n  overwrite: true")
    summaries = run_pipeline(_write(work, text))
    assert [s.action for s in summaries] == ["translated", "computed"]
    with h5py.File(work / "scan.h5", "r") as h5:
        raw = h5["Measurement_000/Channel_000/Raw_Data"]
        np.testing.assert_array_equal(raw[1].reshape(image.data.shape), image.data)


def test_changed_option_or_new_source_refused(ran):
    work, _ = ran
    no_mask = SIMPLE.replace("  mask: frames/mask.edf\n", "")
    with pytest.raises(
        InputError,
        match=r"option mask: recorded '.*mask.edf', pipeline None "
        r"\(default\)",
    ):
        run_pipeline(_write(work, no_mask))
    shutil.copy(work / "frames" / "frame_0000.edf", work / "frames" / "frame_0006.edf")
    with pytest.raises(InputError, match=r"1 source\(s\) not in it, e\.g\. .*frame_0006\.edf"):
        run_pipeline(_write(work, SIMPLE))


def test_process_refusal_names_the_step_line(work):
    path = _write(work, SIMPLE.replace("unit: q_nm^-1", "unit: q_furlong^-1"))
    with pytest.raises(
        InputError,
        match=rf"{path}:12: step 'integrate': unsupported unit "
        "'q_furlong\\^-1'",
    ):
        run_pipeline(path)


def test_dict_api_on_an_existing_file(ran):
    work, _ = ran
    spec = {
        "output": "scan.h5",
        "execution": {"progress": False},
        "steps": [{"integrate": {"npt": 32, "npt_azim": 12, "mask": "frames/mask.edf"}}],
    }
    (summary,) = run_pipeline(spec, base_dir=work)
    assert summary.action == "computed" and summary.line is None
    ds = pyscatter.to_xarray(work / "scan.h5", "AzimuthalIntegration")
    assert ds["Intensity"].dims == ("Y", "X", "chi", "q")
    with h5py.File(work / "scan.h5", "r") as h5:  # the mask file was read as an array
        assert h5[summary.target]["Mask"].shape == (192, 224)
    with pytest.raises(InputError, match=r"pipeline: output .*nope.h5 does not exist"):
        validate_pipeline({"output": "nope.h5", "steps": []}, base_dir=work)


# --------------------------------------------------------------------------- hostile YAML

BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
output: out.h5
"""


def test_alias_bomb_is_refused_before_it_grows(tmp_path, capsys):
    import tracemalloc

    from pyscatter.cli import main

    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    tracemalloc.start()
    try:
        assert main(["run", "--check", str(path)]) == 2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert f"{path}:1: not valid YAML: YAML anchors and aliases" in err
    assert peak < 50 * 2**20  # 9^8 items would be gigabytes


def test_plain_anchor_is_refused_too():
    text = "output: &o out.h5\nsteps: []\n"
    with pytest.raises(InputError, match="anchors and aliases"):
        validate_pipeline(text, check_files=False)


def test_oversized_pipeline_file_is_refused(tmp_path):
    from pyscatter.pipeline import MAX_PIPELINE_BYTES

    path = tmp_path / "big.yaml"
    path.write_text("output: out.h5\n" + "# padding\n" * (MAX_PIPELINE_BYTES // 10 + 1))
    with pytest.raises(InputError, match=r"big\.yaml: \d+ bytes; a pipeline file is at most"):
        validate_pipeline(path, check_files=False)


def test_binary_pipeline_file_is_refused(tmp_path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="bin.yaml: not a UTF-8 text file"):
        validate_pipeline(path, check_files=False)


def test_infinite_memory_budget_is_refused():
    text = "output: out.h5\nexecution:\n  max_mem_mb: .inf\n"
    with pytest.raises(
        InputError, match="max_mem_mb: expected a finite number of MiB > 0 and <= 1048576, got inf"
    ):
        validate_pipeline(text, check_files=False)


# --------------------------------------------------------------------------- declared options


def test_detector_options_are_known_to_every_frame_step_from_one_declaration(work):
    """profiles and sectors take the detector options of integrate (dark, flat, monitor …),
    with the line of a wrong one; ``width`` is the deprecated spelling of ``half_width``."""
    from pyscatter.processes.options import DETECTOR_OPTIONS

    np.save(work / "dark.npy", np.zeros((192, 224), dtype=np.float32))
    steps = (
        "  - profiles: {q: [0.45], half_width: 0.06, dark: dark.npy, exposure_time: 2.0}\n"
        "  - sectors: {npt: 50, flat: frames/mask.edf, polarization_factor: 0.9}\n"
        "  - profiles: {q: [0.45], width: 0.06, allow_fallback: true}\n"
    )
    pipe = validate_pipeline(_write(work, SIMPLE + steps), check_files=False)
    assert [s.name for s in pipe.steps] == ["integrate", "profiles", "sectors", "profiles"]
    assert pipe.steps[1].params["exposure_time"] == 2.0
    bad = SIMPLE + "  - sectors: {npt: 50, polarization_factor: high, monitr: auto}\n"
    with pytest.raises(InputError) as info:
        validate_pipeline(_write(work, bad), check_files=False)
    text = str(info.value)
    assert ":13: polarization_factor: expected a number or null, got 'high'" in text
    assert ":13: step 'sectors' (SectorIntegration) has no parameter 'monitr'" in text
    for option in DETECTOR_OPTIONS:
        assert option.name in text  # the allowed parameters listed include every one
