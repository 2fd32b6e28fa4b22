"""The autopilot's Optuna study: a journal file in the lab, seeded from the ledger, asked and told.

The study is the autopilot's memory. A trial the autopilot proposed carries its run's id as the
user attribute `run`; a trial seeded from the ledger carries `seeded`; a proposal that landed on
a point already measured carries `known` and never became a run. A journal file (Optuna's
`JournalFileBackend`) needs no server, survives restarts and is safe with several processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, Trial, TrialState, create_trial

from engine.sched.search import Axis, Search
from ledger import RunRecord

optuna.logging.set_verbosity(optuna.logging.WARNING)  # the scheduler's log says what matters itself

MAX_ASKS = 20  # proposals that land on known points, per call, before giving up for this pass


def distribution(axis: Axis) -> BaseDistribution:
    """The Optuna distribution of one axis."""
    if axis.kind == "choice":
        return CategoricalDistribution(axis.choices)
    if axis.kind == "int":
        high = int(axis.low + (axis.high - axis.low) // axis.step * axis.step)
        return IntDistribution(int(axis.low), high, step=axis.step)
    return FloatDistribution(axis.low, axis.high)


def _sampler(search: Search, offset: int) -> optuna.samplers.BaseSampler:
    # A resumed study must not replay the draws it made before its restart: the seed moves on.
    seed = search.seed + offset
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if search.sampler == "nsgaii":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if search.sampler == "bruteforce":
        return optuna.samplers.BruteForceSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)


def open_study(search: Search, journal: Path, name: str) -> optuna.Study:
    """The study `name` in `journal`, created on first use, loaded (and its sampler reseeded) after."""
    storage = JournalStorage(JournalFileBackend(str(journal)))
    directions = [StudyDirection.MINIMIZE] * len(search.objectives)
    study = optuna.create_study(storage=storage, study_name=name, directions=directions, load_if_exists=True)
    offset = len(study.get_trials(deepcopy=False))
    study.sampler = _sampler(search, offset)
    return study


def values_of(search: Search, record: RunRecord) -> list[float] | None:
    """The objective values of a measured run: its score (and bytes), or None when it has none."""
    if not record.measured or record.score is None or record.total_bytes is None:
        return None
    return [record.score, float(record.total_bytes)][: len(search.objectives)]


def _distributions(search: Search) -> dict[str, BaseDistribution]:
    return {axis.key: distribution(axis) for axis in search.axes}


def seed(study: optuna.Study, search: Search, records: Iterable[RunRecord]) -> list[str]:
    """Add each measured run of the track that is a point of the space and not yet in the study."""
    trials = study.get_trials(deepcopy=False)
    present = {t.user_attrs.get("seeded") or t.user_attrs.get("run") for t in trials}
    added = []
    for record in records:
        if record.track != search.track or record.id in present:
            continue
        values, params = values_of(search, record), search.params_of(record.spec)
        if values is None or params is None:
            continue
        told: dict[str, Any] = {"state": TrialState.PRUNED} if record.estimated else {"values": values}
        study.add_trial(
            create_trial(params=params, distributions=_distributions(search), user_attrs={"seeded": record.id}, **told)
        )
        added.append(record.id)
    return added


def enqueue_neighbours(study: optuna.Study, search: Search, center: Mapping[str, Any]) -> int:
    """Enqueue the points next to `center` (one axis moved a step each way) that the study lacks."""
    known = {_key(t.params) for t in study.get_trials(deepcopy=False)}
    count = 0
    for axis in search.axes:
        value = center.get(axis.key)
        if value is None:
            continue
        for moved in _steps(axis, value):
            point = {**center, axis.key: moved}
            if _key(point) not in known:
                study.enqueue_trial(point, skip_if_exists=True)
                known.add(_key(point))
                count += 1
    return count


def _steps(axis: Axis, value: Any) -> list[Any]:
    if axis.kind == "choice":
        i = axis.choices.index(value)
        return [axis.choices[j] for j in (i - 1, i + 1) if 0 <= j < len(axis.choices)]
    # A tenth of the range, at least one step: crf 26..46 moves by 2.
    if axis.kind == "int":
        whole = max(axis.step, round((axis.high - axis.low) / 10 / axis.step) * axis.step)
        return [int(v) for v in (value - whole, value + whole) if axis.contains(v)]
    tenth = (axis.high - axis.low) / 10
    return [v for v in (value - tenth, value + tenth) if axis.contains(v)]


def _key(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


def ask(study: optuna.Study, search: Search) -> Trial | None:
    """A new point to run, or None when every draw landed on a measured or pending point.

    A draw on a measured point is told that point's values at once (user attribute `known`), so
    no run is spent on it (a point rejected early is told PRUNED again); a draw on a pending point
    is told FAIL. Either way the sampler learns.
    """
    distributions = _distributions(search)
    for _ in range(MAX_ASKS):
        trials = study.get_trials(deepcopy=False)
        measured = (TrialState.COMPLETE, TrialState.PRUNED)
        done = {_key(t.params): t for t in trials if t.state in measured}
        pending = {_key(t.params) for t in trials if t.state == TrialState.RUNNING and "run" in t.user_attrs}
        trial = study.ask(distributions)
        key = _key(trial.params)
        if key in done:
            twin = done[key]
            trial.set_user_attr("known", twin.user_attrs.get("run") or twin.user_attrs.get("seeded"))
            study.tell(trial, twin.values, state=twin.state)
        elif key in pending:
            study.tell(trial, state=TrialState.FAIL)
        else:
            return trial
    return None


def tell(study: optuna.Study, search: Search, trial: FrozenTrial, record: RunRecord) -> bool:
    """Tell a proposal's result once its run has ended for good; returns whether it was told."""
    if not record.status.final:
        return False
    values = values_of(search, record)
    if values is None:
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    elif record.estimated:  # rejected early: a clear loser whose score is only estimated
        study.tell(trial.number, state=TrialState.PRUNED, skip_if_finished=True)
    else:
        study.tell(trial.number, values, skip_if_finished=True)
    return True


def proposals(study: optuna.Study) -> list[FrozenTrial]:
    """Every trial that became a run, in order."""
    return [t for t in study.get_trials(deepcopy=False) if "run" in t.user_attrs]


def fail_orphans(study: optuna.Study) -> int:
    """Fail the trials asked but never queued (the scheduler stopped in between): they hold no run."""
    orphans = [
        t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING and "run" not in t.user_attrs
    ]
    for trial in orphans:
        study.tell(trial.number, state=TrialState.FAIL)
    return len(orphans)


def best(study: optuna.Study) -> tuple[float, str] | None:
    """The lowest score of the study's measured points and its run (for two objectives, by score)."""
    scored = [
        (t.values[0], t.user_attrs.get("run") or t.user_attrs.get("seeded") or "")
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "known" not in t.user_attrs
    ]
    return min(scored) if scored else None
