"""The public step checks of pyscatter.pipeline: validate_step, Step.arguments, yaml_value."""

import numpy as np
import pytest

from pyscatter.errors import InputError
from pyscatter.pipeline import STEP_KEYS, validate_pipeline, validate_step, yaml_value


def test_validate_step_matches_the_pipeline_check():
    params = {"q": [0.45], "half_width": 0.06, "npt_azim": 90, "polarization_factor": 0.99}
    step = validate_step("profiles", params, check_files=False)
    pipe = validate_pipeline({"output": "x.h5", "steps": [{"profiles": params}]}, check_files=False)
    assert step.params == pipe.steps[0].params
    assert step.process is pipe.steps[0].process


def test_validate_step_reports_every_problem_with_where():
    with pytest.raises(InputError) as err:
        validate_step("profiles", {"colour": 1, "npt_azim": "many"}, where="--set")
    lines = str(err.value).splitlines()
    assert all(line.startswith("--set: ") for line in lines)
    assert any("no parameter 'colour'" in line for line in lines)
    assert any("npt_azim" in line for line in lines)


def test_step_arguments_read_array_files(tmp_path):
    mask = np.zeros((4, 5), dtype=np.uint8)
    mask[1, 2] = 1
    np.save(tmp_path / "mask.npy", mask)
    step = validate_step("integrate", {"mask": "mask.npy"}, base_dir=tmp_path)
    np.testing.assert_array_equal(step.arguments()["mask"], mask)
    with pytest.raises(InputError, match="no such file"):
        validate_step("integrate", {"mask": "other.npy"}, base_dir=tmp_path)


def test_yaml_value():
    assert yaml_value("[0.45, 0.8]") == [0.45, 0.8]
    assert yaml_value("") is None
    with pytest.raises(InputError, match="not a YAML value"):
        yaml_value("[1")
    with pytest.raises(InputError, match="anchors and aliases"):
        yaml_value("[&a 1, *a]")
    assert set(STEP_KEYS) == {"source", "override", "execution"}
