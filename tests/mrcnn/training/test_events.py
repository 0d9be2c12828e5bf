"""The training event stream: each event's JSON line has exactly the keys `train --json` has
always written, parses back to the same record, and anything else is a clear error."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from mrcnn.errors import EventFormatError
from mrcnn.training.events import (
    ConsolePrinter,
    DoneEvent,
    ErrorEvent,
    EvalEvent,
    JsonLinesWriter,
    SavedEvent,
    StartEvent,
    StepEvent,
    parse_event,
)

METRICS = {"segm": {"AP": 0.25}, "bbox": {"AP": 0.5}}

#: Each event and the JSON object it is written as (keys in this order).
LINES = [
    (StartEvent(max_iters=3, train_images=6, val_images=2, device="CPU", preset="r18", size=64,
                world_size=1, start="coco", recipe="r18 from COCO weights", batch_size=2),
     {"event": "start", "max_iters": 3, "train_images": 6, "val_images": 2, "device": "CPU",
      "preset": "r18", "size": 64, "world_size": 1, "start": "coco",
      "recipe": "r18 from COCO weights", "batch_size": 2}),
    (StepEvent(iteration=1, max_iters=3, losses={"loss_mask": 0.5}, loss=0.5, lr=0.01,
               seconds_per_iter=0.2, eta_seconds=0.4),
     {"event": "step", "iteration": 1, "max_iters": 3, "losses": {"loss_mask": 0.5},
      "loss": 0.5, "lr": 0.01, "seconds_per_iter": 0.2, "eta_seconds": 0.4}),
    (EvalEvent(stage="before", iteration=0, metrics=METRICS),
     {"event": "eval", "stage": "before", "iteration": 0, "metrics": METRICS}),
    (EvalEvent(stage="baseline", version="v1", iteration=0, metrics=METRICS),
     {"event": "eval", "stage": "baseline", "version": "v1", "iteration": 0,
      "metrics": METRICS}),
    (EvalEvent(stage="baseline", version="v1", metrics=None, error="other categories"),
     {"event": "eval", "stage": "baseline", "version": "v1", "metrics": None,
      "error": "other categories"}),
    (SavedEvent(version="v2", path="models/v2.pt"),
     {"event": "saved", "version": "v2", "path": "models/v2.pt"}),
    (SavedEvent(staged="/p/models/.s.pt", preset="r18", parent_id=None, metadata={"a": 1}),
     {"event": "saved", "staged": "/p/models/.s.pt", "preset": "r18", "parent_id": None,
      "metadata": {"a": 1}}),
    (DoneEvent(staged="/p/models/.s.pt"), {"event": "done", "staged": "/p/models/.s.pt"}),
    (DoneEvent(version="v2", path="models/v2.pt", metrics={"after": METRICS}),
     {"event": "done", "version": "v2", "path": "models/v2.pt", "metrics": {"after": METRICS}}),
    (ErrorEvent(message="out of memory"), {"event": "error", "message": "out of memory"}),
]


@pytest.mark.parametrize(("event", "obj"), LINES, ids=lambda x: getattr(x, "kind", ""))
def test_each_event_writes_its_keys_and_parses_back(event, obj):
    out = io.StringIO()
    JsonLinesWriter(out)(event)
    line = out.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert list(json.loads(line).items()) == list(obj.items())  # same keys, same order
    assert parse_event(line) == event
    assert parse_event(line.encode()) == event
    assert parse_event(obj) == event


def test_missing_optional_fields_default_and_numbers_take_the_field_type():
    start = parse_event({"event": "start", "max_iters": "2", "device": "CPU"})
    assert start == StartEvent(max_iters=2, device="CPU")
    step = parse_event({"event": "step", "iteration": 1.0, "max_iters": 2, "loss": 1})
    assert (step.iteration, step.loss, step.losses, step.eta_seconds) == (1, 1.0, {}, 0.0)


@pytest.mark.parametrize(("line", "message"), [
    ("progress 3/10", "not a JSON training event"),
    ("[1, 2]", "JSON object"),
    ('{"iteration": 1}', "unknown training event None"),
    ('{"event": "shown"}', "unknown training event 'shown'"),
    ('{"event": "step", "max_iters": 3, "loss": 1}', "step event without 'iteration'"),
    ('{"event": "step", "iteration": "x", "max_iters": 3, "loss": 1}', "bad iteration"),
    ('{"event": "eval", "stage": "later"}', "bad stage"),
    ('{"event": "saved", "metadata": [1]}', "bad metadata"),
])
def test_anything_else_is_an_event_format_error(line, message):
    with pytest.raises(EventFormatError, match=message):
        parse_event(line)
    with pytest.raises(ValueError):  # also a ValueError, for callers that catch those
        parse_event(line)


def test_console_printer_shows_progress_on_stderr_and_the_result_on_stdout():
    out, err = io.StringIO(), io.StringIO()
    printer = ConsolePrinter(out, err)
    for event, _obj in LINES:
        printer(event)
    for i in range(2, 21):  # steps between reports say nothing
        printer(StepEvent(iteration=i, max_iters=40, loss=0.25, lr=0.02, eta_seconds=9.6))
    assert err.getvalue().splitlines() == [
        "training r18 from COCO weights on 6 images (2 val) for 3 iterations at 64 px, "
        "batch 2 on CPU",
        "before training: segm AP 0.250, bbox AP 0.500",
        "baseline training: segm AP 0.250, bbox AP 0.500",
        "baseline training: not scored (other categories)",
        "error: out of memory",
        "iter 20/40  loss 0.250  lr 0.02000  eta 10s",
    ]
    assert out.getvalue().splitlines() == [
        "trained model written to /p/models/.s.pt (not registered)",
        "saved model version v2 (models/v2.pt), now active; val segm AP 0.250",
    ]


def test_events_module_imports_no_torch():
    code = ("import sys, mrcnn.training.events, mrcnn.training.launcher; "
            "print(sorted(m for m in ('torch', 'PySide6') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"
