"""The one worker abstraction: results, progress, errors as messages, cancellation."""

from __future__ import annotations

import threading

import pytest

from app.worker import JobRunner
from mrcnn.errors import ImageReadError


@pytest.fixture
def runner():
    r = JobRunner()
    yield r
    assert r.shutdown(10000)


def test_result_and_progress_arrive_on_the_gui_thread(qtbot, runner):
    threads, progress = [], []

    def work(ctx, n):
        threads.append(threading.current_thread())
        for i in range(n):
            ctx.progress(i + 1, n, f"step {i}")
        return {"sum": sum(range(n))}

    job = runner.submit(work, 5)
    job.progressed.connect(lambda d, t, text: progress.append((d, t, text,
                                                               threading.current_thread())))
    with qtbot.waitSignal(job.succeeded, timeout=5000) as blocker:
        pass
    assert blocker.args == [{"sum": 10}]
    assert threads[0] is not threading.main_thread()
    assert progress[-1][:2] == (5, 5)  # the last step is never throttled away
    assert all(p[3] is threading.main_thread() for p in progress)


def test_library_error_becomes_a_message(qtbot, runner):
    def work(ctx):
        raise ImageReadError("/x/broken.jpg", "corrupt header")

    job = runner.submit(work)
    with qtbot.waitSignal(job.failed, timeout=5000) as blocker:
        pass
    assert blocker.args == ["cannot read image /x/broken.jpg: corrupt header"]


def test_a_bug_in_a_job_is_reported_not_raised(qtbot, runner):
    job = runner.submit(lambda ctx: 1 / 0, name="dividing")
    with qtbot.waitSignal(job.failed, timeout=5000) as blocker:
        pass
    assert "dividing failed unexpectedly" in blocker.args[0]
    assert "ZeroDivisionError" in blocker.args[0]


def test_cancel_stops_at_the_next_check(qtbot, runner):
    started, release = threading.Event(), threading.Event()
    steps = []

    def work(ctx):
        started.set()
        release.wait(5)
        for i in range(100):
            ctx.check()
            steps.append(i)
        return "finished"

    job = runner.submit(work)
    outcomes = []
    job.succeeded.connect(lambda _r: outcomes.append("succeeded"))
    job.cancelled.connect(lambda: outcomes.append("cancelled"))
    assert started.wait(5)
    job.cancel()
    release.set()
    with qtbot.waitSignal(job.finished, timeout=5000):
        pass
    assert outcomes == ["cancelled"]
    assert steps == []
    qtbot.waitUntil(lambda: runner.active_jobs == 0)


def test_a_job_that_ends_before_anyone_connected_is_not_lost(qtbot, runner):
    ended = threading.Event()

    def work(ctx):
        ended.set()
        raise ImageReadError("/x/empty.jpg", "file is empty (0 bytes)")

    job = runner.submit(work)
    assert ended.wait(5)  # the job is over before the GUI thread connects
    messages = []
    job.failed.connect(messages.append)
    qtbot.waitUntil(lambda: job.done, timeout=5000)
    assert messages == ["cannot read image /x/empty.jpg: file is empty (0 bytes)"]


def test_many_jobs_and_signals_do_not_crash(qtbot, runner):
    done = []

    def work(ctx, k):
        for i in range(50):
            ctx.check()
            ctx.progress(i + 1, 50)
        return k

    for k in range(200):
        runner.submit(work, k, lane="image").succeeded.connect(done.append)
    qtbot.waitUntil(lambda: len(done) == 200, timeout=20000)
    assert sorted(done) == list(range(200))


def test_signals_and_void_calls_do_not_wear_out_none_and_true(qapp):
    """PySide6 6.12 on Python 3.11 drops a reference to None per void call and to True per
    emit; `qt_compat.apply()` (conftest, main.py) keeps that from ever aborting the app."""
    import sys

    from PySide6.QtCore import QObject, Signal

    class Pinger(QObject):
        pinged = Signal()

    p = Pinger()
    start_none, start_true = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(20000):
        p.pinged.emit()
        p.setObjectName("x")
    assert sys.getrefcount(None) > 1 << 20 or sys.getrefcount(None) >= start_none - 100
    assert sys.getrefcount(True) > 1 << 20 or sys.getrefcount(True) >= start_true - 100


def test_partial_results_arrive_in_order_before_the_end(qtbot, runner):
    def work(ctx, n):
        for i in range(n):
            ctx.yield_result({"image": i})
        ctx.check()
        return "done"

    job = runner.submit(work, 30)
    events = []
    job.yielded.connect(lambda value: events.append(value["image"]))
    job.succeeded.connect(events.append)
    with qtbot.waitSignal(job.finished, timeout=5000):
        pass
    assert events == [*range(30), "done"]


def test_after_shutdown_no_job_end_reaches_a_listener_that_may_be_gone(qtbot):
    """The window closes while a job runs: its end, still queued for the GUI thread, must not
    call into the window's controllers (once a RuntimeError: 'Signal source has been
    deleted' from a model job that ended as the window went away)."""
    runner = JobRunner()
    started = threading.Event()

    def work(ctx):
        started.set()
        while True:
            ctx.check()
            threading.Event().wait(0.01)

    heard = []
    job = runner.submit(work)
    for signal in (job.finished, job.cancelled, job.succeeded, job.failed):
        signal.connect(lambda *a, s=signal: heard.append(s))
    assert started.wait(10)
    assert runner.shutdown(10000)  # the job was cancelled and its thread has ended
    qtbot.wait(100)  # the queued ends would arrive now
    assert heard == []
    assert runner.active_jobs == 0


def test_the_progress_line_says_the_step_and_its_unit_and_picks_up_a_running_job(qtbot,
                                                                                  runner):
    """What the status bar's progress says: the count, its unit, what the job is at; one
    that starts following a job already under way shows where it is at once."""
    from app.panels.progress import JobProgressWidget

    gate = threading.Event()

    def work(ctx):
        ctx.progress(0, 1, "big.png")
        ctx.progress(3, 80, "tiles of big.png")  # another scale: never throttled away
        gate.wait(5)
        return None

    widget = JobProgressWidget()
    qtbot.addWidget(widget)
    job = runner.submit(work)
    qtbot.waitUntil(lambda: job.last_progress == (3, 80, "tiles of big.png"), timeout=5000)
    widget.track(job, "Predicting")  # late: it starts from the last report
    assert widget.label.text().startswith("Predicting 3/80 · tiles of big.png")
    assert (widget.bar.value(), widget.bar.maximum()) == (3, 80)
    gate.set()
    qtbot.waitUntil(lambda: job.done, timeout=5000)

    download = runner.submit(lambda ctx: ctx.progress(30, 160))
    widget.track(download, "Downloading COCO weights", unit="MB")
    qtbot.waitUntil(lambda: "30/160 MB" in widget.label.text() or download.done, timeout=5000)
    assert widget.label.text().startswith("Downloading COCO weights 30/160 MB")
