"""--evolve-sampler tpe: optuna's TPE inside the search space, deterministic for a seed, continuing after a kill,
and finding more than chance on a known optimum."""

import csv

import pytest
import yaml

from tests.utils.engine.test_evolve import BASE, FakeTrain, _config
from utils.engine.config import ConfigurationError
from utils.engine.evolve import MUTATION, evolve
from utils.engine.tuners import search_space


@pytest.fixture
def hyp_file(tmp_path):
    path = tmp_path / "hyp.base.yaml"
    path.write_text(yaml.safe_dump(BASE, sort_keys=False))
    return path


def test_search_space_is_one_mutations_reach_within_the_limits():
    space = search_space({**BASE, "lr0": 0.05, "momentum": 0.9}, MUTATION)
    assert space["lr0"] == pytest.approx((0.015, 0.1))  # 3 x 0.05 clipped to the key's upper limit
    assert space["momentum"] == pytest.approx((0.6, 0.98))
    assert "degrees" not in space and "optimizer" not in space  # zeros and non-numbers stay as they are
    assert all(low <= {**BASE, "lr0": 0.05}[k] <= high for k, (low, high) in space.items())
    with pytest.raises(ConfigurationError, match="no key"):
        search_space({"optimizer": "SGD"}, MUTATION)


def test_tpe_stays_in_the_space_repeats_for_a_seed_and_continues_after_a_kill(tmp_path, hyp_file):
    straight = FakeTrain()
    folder = evolve(straight, _config(tmp_path / "a", hyp_file), 8, "AP", sampler="tpe")
    assert straight.calls[0] == BASE
    space = search_space(BASE, MUTATION)
    for call in straight.calls[1:]:
        assert call != BASE and call["optimizer"] == "SGD" and call["degrees"] == 0.0
        assert all(low - 1e-12 <= call[k] <= high + 1e-12 for k, (low, high) in space.items())
    with open(folder / "evolve.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 8
    killed = FakeTrain(stop_after=6)
    with pytest.raises(KeyboardInterrupt):
        evolve(killed, _config(tmp_path / "b", hyp_file), 8, "AP", sampler="tpe")
    resumed = FakeTrain()
    evolve(resumed, _config(tmp_path / "b", hyp_file), 8, "AP", sampler="tpe")
    assert killed.calls + resumed.calls == straight.calls
    other = FakeTrain()
    evolve(other, _config(tmp_path / "c", hyp_file, seed=1), 8, "AP", sampler="tpe")
    assert other.calls[1:] != straight.calls[1:]


def test_tpe_models_the_fitness_after_its_random_start(tmp_path, hyp_file):
    """The fake fitness peaks at lr0 = 0.02: TPE's modelled draws land nearer it than its random ones."""
    fake = FakeTrain()
    evolve(fake, _config(tmp_path, hyp_file), 25, "AP", sampler="tpe")
    distance = [abs(call["lr0"] - 0.02) for call in fake.calls]
    random_part, modelled = sorted(distance[1:5]), sorted(distance[15:])
    assert sum(modelled) / len(modelled) < sum(random_part) / len(random_part)


def test_unknown_sampler_is_a_one_line_error(tmp_path, hyp_file):
    with pytest.raises(ConfigurationError, match="--evolve-sampler cma"):
        evolve(FakeTrain(), _config(tmp_path, hyp_file), 2, sampler="cma")


def test_train_py_passes_the_sampler_to_evolution(monkeypatch, tmp_path):
    import train
    import utils.engine.evolve
    import utils.memory

    seen = {}
    monkeypatch.setattr(utils.memory, "keep_freed_memory", lambda: None)
    monkeypatch.setattr(utils.engine.evolve, "evolve", lambda *a, **kw: seen.update(kw))
    train.main(["--evolve", "3", "--project", str(tmp_path), "--device", "cpu"])
    assert seen["sampler"] == "tpe"  # the default: it found the better hyp file on the embedded set (docs/training.md)
    train.main(["--evolve", "3", "--evolve-sampler", "genetic", "--project", str(tmp_path), "--device", "cpu"])
    assert seen["sampler"] == "genetic"
    with pytest.raises(SystemExit):
        train.main(["--evolve", "3", "--evolve-sampler", "cma"])  # argparse's choices


def test_missing_optuna_names_the_fix_and_the_other_sampler(monkeypatch, tmp_path, hyp_file):
    import sys

    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    fake = FakeTrain()
    with pytest.raises(ConfigurationError, match="pip install optuna, or choose --evolve-sampler genetic"):
        evolve(fake, _config(tmp_path, hyp_file), 2, "AP")
    assert len(fake.calls) == 1  # generation 0 needs no sampler
