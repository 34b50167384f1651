"""--evolve-sampler tpe (the default): optuna's Tree-structured Parzen Estimator instead of yolov5's mutation.

The search space is what one genetic mutation can reach from the starting hyp file: each key that mutation moves
(in the mutation table, a non-zero number, a non-zero scale) ranges over [start / 3, start * 3] within the key's
limits, on a log scale. Each generation rebuilds the study from evolve.csv and asks a sampler seeded by (seed,
generation) for the next hyp file, so a continued evolution and a repeated seed draw the same generations
(evolve.csv is the only state).
"""

from __future__ import annotations

import math
from typing import Any

from utils.engine.config import ConfigurationError

STARTUP_TRIALS = 5  # generations drawn at random in the space before TPE models it (generation 0 included)
SAMPLERS = ("tpe", "genetic")


def search_space(base: dict[str, Any], limits: dict[str, tuple[float, float, float]]) -> dict[str, tuple[float, float]]:
    """key -> (low, high): one mutation's reach (x0.3-x3 clipped to the key's limits), always holding the start."""
    space = {}
    for key, value in base.items():
        if key not in limits or isinstance(value, bool) or not isinstance(value, (int, float)) or not value:
            continue
        scale, low, high = limits[key]
        if not scale:
            continue
        lo, hi = max(low, value * 0.3), min(high, value * 3.0)
        space[key] = (min(lo, value), max(hi, value))
    if not space:
        raise ConfigurationError("--evolve: the hyp file has no key that evolution can change")
    return space


def tpe_child(rows: list[dict[str, Any]], base: dict[str, Any], limits: dict[str, tuple[float, float, float]],
              seed: int, generation: int) -> dict[str, Any]:
    """The next hyp file TPE proposes after the scored ``rows`` of evolve.csv (numbers as written there)."""
    try:
        import optuna
    except ImportError as error:
        raise ConfigurationError("--evolve-sampler tpe needs optuna (a dependency of this project): "
                                 "pip install optuna, or choose --evolve-sampler genetic") from error
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = search_space(base, limits)
    distributions = {k: optuna.distributions.FloatDistribution(lo, hi, log=lo > 0) for k, (lo, hi) in space.items()}
    sampler = optuna.samplers.TPESampler(seed=int(seed) * 100_003 + generation, n_startup_trials=STARTUP_TRIALS,
                                         multivariate=True)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for row in rows:
        params = {k: min(max(float(row[k]), space[k][0]), space[k][1]) for k in space}
        fitness = float(row["fitness"])
        state = optuna.trial.TrialState.COMPLETE if math.isfinite(fitness) else optuna.trial.TrialState.FAIL
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, state=state,
                                                  value=fitness if state == optuna.trial.TrialState.COMPLETE else None))
    trial = study.ask(distributions)
    child = dict(base)
    child.update({k: float(f"{trial.params[k]:.5g}") for k in space})
    return child
