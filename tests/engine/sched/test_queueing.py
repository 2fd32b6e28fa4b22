"""engine.sched.queueing: points that a finished run measured already are named, and left out on request.

The `lab` and `spec` fixtures (a stand-in clip and models) are in this folder's conftest.
"""

from __future__ import annotations

from engine.runs.measured import measure_key, measured_index
from engine.runs.spec import RunSpec, lab_source, parse_spec
from engine.sched import control
from ledger import Lab, Ledger
from tests.ledger.fixtures import result


def measure(ledger: Ledger, spec: RunSpec, label: str = "", track: str = "main") -> str:
    """Queue `spec` and give it a result, as a worker would; its id."""
    record = ledger.add_run(spec.to_dict(), label=label, track=track)
    ledger.update(record.id, status="running")
    return ledger.record_result(record.id, result(2.0, scorer="s", clip="c")).id


def test_the_same_spec_after_defaults_is_measured_whatever_its_label_or_track(lab: Lab, spec: RunSpec) -> None:
    ledger = Ledger(lab)
    first = measure(ledger, spec, label="first")
    spelled_out = parse_spec({"encode": {"crf": 34, "preset": "12", "codec": "libsvtav1"}}, lab_source(lab))
    elsewhere = spelled_out.with_value("run.track", "side").with_value("run.label", "again")
    index = measured_index(ledger.records(ledger.measured()), lab_source(lab))
    assert index[measure_key(elsewhere)].id == first
    assert measure_key(spec.with_value("run.seed", 1)) not in index  # a seed changes what is measured


def test_a_sweep_names_the_points_measured_already_and_again_decides(lab: Lab, spec: RunSpec) -> None:
    ledger = Ledger(lab)
    measured = measure(ledger, spec.with_value("crf", 33))
    points = control.sweep_points(lab, spec, {"crf": ["32..34"]})
    assert [(p.label, p.measured_by.id if p.measured_by else None) for p in points] == [
        ("base crf=32", None),
        ("base crf=33", measured),
        ("base crf=34", None),
    ]
    assert [r.label for r in control.queue_sweep(lab, spec, {"crf": ["32..34"]}, again=False)] == [
        "base crf=32",
        "base crf=34",
    ]
    assert len(control.queue_sweep(lab, spec, {"crf": ["33"]})) == 1  # again=True: a second measurement


def test_around_the_floor_leaves_out_measured_neighbours(lab: Lab, spec: RunSpec) -> None:
    ledger = Ledger(lab)
    floor = measure(ledger, spec)
    measure(ledger, spec.with_value("crf", 35))
    queued = control.around_floor_axes(lab, "main", {"crf": ["-1", "+1"]}, again=False)
    assert [(r.label, r.parent) for r in queued] == [("crf=33", floor)]
