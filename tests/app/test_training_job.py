"""The window reads the training process's events however its output is cut into reads: an
event split across two reads (or arriving a byte at a time) is still one event, in order."""

from __future__ import annotations

import json
from pathlib import Path

from app.controllers.training_job import TrainingProcess
from mrcnn.training.events import (
    DoneEvent,
    EvalEvent,
    SavedEvent,
    StartEvent,
    StepEvent,
    parse_event,
)

EVENTS = [
    StartEvent(max_iters=2, train_images=3, val_images=1, device="CPU — café", preset="r18",
               size=64),
    StepEvent(iteration=1, max_iters=2, losses={"loss_mask": 0.5}, loss=0.5, lr=0.01),
    StepEvent(iteration=2, max_iters=2, losses={"loss_mask": 0.25}, loss=0.25, lr=0.01),
    EvalEvent(stage="after", metrics={"segm": {"AP": 0.5}}),
    SavedEvent(staged="/tmp/x.pt", preset="r18", parent_id=1, metadata={"size": 64}),
    DoneEvent(staged="/tmp/x.pt"),
]
STREAM = b"".join(
    (json.dumps(e.to_json(), ensure_ascii=False) + "\n").encode()
    for e in EVENTS)


class FakeBytes:
    def __init__(self, data: bytes):
        self._data = data

    def data(self) -> bytes:
        return self._data


class FakeChildOutput:
    """Stands in for the QProcess: hands out what the child wrote since the last read."""

    def __init__(self):
        self.pending = b""

    def readAllStandardOutput(self) -> FakeBytes:  # noqa: N802 - Qt's name
        data, self.pending = self.pending, b""
        return FakeBytes(data)


def read_in_chunks(chunks: list[bytes]) -> list:
    job = TrainingProcess(["python"], stage=Path("/nonexistent"))
    got: list = []
    job.event.connect(got.append)
    fake = FakeChildOutput()
    job.process = fake  # the reader only asks the process for what arrived
    for chunk in chunks:
        fake.pending += chunk
        job._on_process_stdout()
    return got


def test_the_stream_parses_to_the_events_written():
    assert [parse_event(line) for line in STREAM.splitlines()] == EVENTS


def test_an_event_split_at_any_byte_arrives_whole(qapp):
    for cut in range(len(STREAM) + 1):
        assert read_in_chunks([STREAM[:cut], STREAM[cut:]]) == EVENTS, STREAM[:cut][-40:]


def test_events_arriving_a_byte_at_a_time_arrive_whole(qapp):
    assert read_in_chunks([STREAM[i:i + 1] for i in range(len(STREAM))]) == EVENTS
