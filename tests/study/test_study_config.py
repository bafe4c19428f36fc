"""Study config: validation naming the field, TOML/YAML round-trip, presets, the grid's cells."""

from __future__ import annotations

import pytest

from sparsinglaw.errors import ConfigError
from sparsinglaw.study import PRESETS, StudyConfig, load_study


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_round_trip_toml_and_yaml(name, tmp_path):
    cfg = load_study(name)
    for suffix in (".toml", ".yaml"):
        path = cfg.save(tmp_path / f"study{suffix}")
        assert load_study(path).to_dict() == cfg.to_dict()


def test_demo_grid_cells():
    cells = load_study("demo").cells()
    names = [c.name for c in cells]
    assert len(names) == 5 and len(set(names)) == 5
    assert {c.activation for c in cells} == {"relu", "silu"}
    assert sorted({c.ratio for c in cells if c.activation == "relu"}) == [6, 16]  # the width-depth pair
    assert sorted({c.n_params for c in cells if c.activation == "silu"}) == [3e4, 1e5]  # two scales
    shape = cells[0].describe()
    assert shape["hidden_size"] / shape["num_layers"] == 16


@pytest.mark.parametrize("override, field", [
    ("activations=['tanh']", "activations"),
    ("shapes=[]", "shapes"),
    ("token_budgets=[0]", "token_budgets"),
    ("launcher='slurm'", "launcher"),
    ("base.run_dir='x'", "base.run_dir"),
    ("base.seq_len=1", "seq_len"),
    ("track.p=0", "track"),
    ("bogus=1", "bogus"),
])
def test_bad_values_name_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_study("mini", [override])


def test_file_overrides_and_preset(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('preset = "mini"\nactivations = ["relu"]\n[[shapes]]\nn_params = 3e4\nratio = 16\n'
                    '[[shapes]]\nn_params = 3e4\nratio = 8\nactivations = ["relu"]\n')
    cfg = load_study(path, ["token_budgets=[1024, 2048]"])
    assert isinstance(cfg, StudyConfig)
    assert [c.name for c in cfg.cells()] == ["relu-N30000-r16-D1024", "relu-N30000-r16-D2048",
                                             "relu-N30000-r8-D1024", "relu-N30000-r8-D2048"]
    assert cfg.cells()[0].train_config().token_budget == 1024
