"""Logging that cannot fill an SD card: rate-limited repeats, a size-capped rotating file."""

from __future__ import annotations

import logging
import logging.handlers
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ihd import logs
from ihd.logs import RateLimit


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


Limited = tuple[logging.Logger, Capture, FakeTime]


@pytest.fixture
def limited(request: pytest.FixtureRequest) -> Iterator[Limited]:
    """A private logger whose one handler carries a RateLimit on a fake clock."""
    clock = FakeTime()
    cap = Capture()
    cap.addFilter(RateLimit(burst=5, window_s=60.0, clock=clock))
    log = logging.getLogger(f"test.logs.{request.node.name}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(cap)
    yield log, cap, clock
    log.removeHandler(cap)


@pytest.fixture
def root_restored() -> Iterator[None]:
    """logs.setup() reconfigures the root logger; put pytest's handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    for h in handlers:  # out of setup()'s reach (it closes what it removes)
        root.removeHandler(h)
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def test_burst_passes_then_the_rest_are_suppressed(limited: Limited) -> None:
    log, cap, _ = limited
    for i in range(12):
        log.warning("bad FCS from %s", f"meter{i}")  # one template, many arguments
    assert cap.messages == [f"bad FCS from meter{i}" for i in range(5)]


def test_first_record_after_the_window_reports_how_many_were_dropped(limited: Limited) -> None:
    log, cap, clock = limited
    for i in range(12):
        log.warning("bad FCS from %s", i)
    clock.t += 59
    log.warning("bad FCS from %s", "late")  # still the same window: dropped too
    clock.t += 2
    log.warning("bad FCS from %s", "next")
    assert len(cap.messages) == 6
    assert cap.messages[-1] == "bad FCS from next [8 more like this were suppressed]"
    # the new window has its own burst of five (the summarising record is the first)
    for i in range(10):
        log.warning("bad FCS from %s", i)
    assert len(cap.messages) == 6 + 4
    assert not any("suppressed" in m for m in cap.messages[6:])


def test_nothing_dropped_means_no_note(limited: Limited) -> None:
    log, cap, clock = limited
    for _ in range(5):
        log.info("radio up")
    clock.t += 61
    log.info("radio up")
    assert cap.messages == ["radio up"] * 6


def test_templates_and_loggers_are_limited_independently(limited: Limited) -> None:
    log, cap, _ = limited
    other = log.getChild("other")  # propagates to the same handler
    for i in range(10):
        log.warning("template A %d", i)
        log.warning("template B %d", i)
        other.warning("template A %d", i)
    assert [m for m in cap.messages if m.startswith("template A")] == [
        f"template A {i}" for i in range(5) for _ in (log, other)
    ]
    assert [m for m in cap.messages if m.startswith("template B")] == [
        f"template B {i}" for i in range(5)
    ]


def test_critical_always_passes(limited: Limited) -> None:
    log, cap, _ = limited
    for i in range(5):
        log.error("disk full %d", i)
    for i in range(20):
        log.critical("disk full %d", i)
    log.error("disk full %d", 99)  # the burst of ERRORs is spent
    assert cap.messages == [f"disk full {i}" for i in range(5)] + [
        f"disk full {i}" for i in range(20)
    ]


def test_default_clock_is_real_time() -> None:
    cap = Capture()
    cap.addFilter(RateLimit(burst=2, window_s=0.05))
    log = logging.getLogger("test.logs.realtime")
    log.propagate = False
    log.addHandler(cap)
    try:
        for _ in range(4):
            log.warning("flap")
        time.sleep(0.08)
        log.warning("flap")
    finally:
        log.removeHandler(cap)
    assert cap.messages == ["flap", "flap", "flap [2 more like this were suppressed]"]


def test_setup_counts_each_record_once_across_stderr_and_file(
    tmp_path: Path, root_restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.setup(log_dir=tmp_path)  # stderr and file share one limiter
    log = logging.getLogger("ihd.test.shared")
    for i in range(12):
        log.warning("neighbour's meter %s on our channel", i)
    for h in logging.getLogger().handlers:
        h.flush()
    file_lines = (tmp_path / "ihd.log").read_text().splitlines()
    err_lines = capsys.readouterr().err.splitlines()
    expected = [f"neighbour's meter {i} on our channel" for i in range(5)]
    assert [line.split(": ", 1)[1] for line in file_lines] == expected
    assert [line.split(": ", 1)[1] for line in err_lines] == expected
    assert "WARNING ihd.test.shared:" in file_lines[0]


def test_setup_replaces_handlers_instead_of_adding(tmp_path: Path, root_restored: None) -> None:
    logs.setup(level=logging.DEBUG)
    logs.setup(level=logging.WARNING, log_dir=tmp_path)
    root = logging.getLogger()
    assert root.level == logging.WARNING
    kinds = sorted(type(h).__name__ for h in root.handlers)
    assert kinds == ["RotatingFileHandler", "StreamHandler"]
    logs.setup(stderr=False)
    assert logging.getLogger().handlers == []


def test_log_file_rotates_and_stays_bounded(tmp_path: Path, root_restored: None) -> None:
    max_bytes, backups = 2000, 2
    logs.setup(log_dir=tmp_path, stderr=False, max_bytes=max_bytes, backups=backups)
    log = logging.getLogger("ihd.test.rotate")
    for i in range(300):  # ~30 kB of distinct messages: 15x the cap
        log.warning(f"message {i:04d} " + "x" * 40)
    for h in logging.getLogger().handlers:
        h.flush()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["ihd.log", "ihd.log.1", "ihd.log.2"]
    sizes = [(tmp_path / f).stat().st_size for f in files]
    assert all(0 < s <= max_bytes for s in sizes), sizes
    newest = (tmp_path / "ihd.log").read_text()
    assert "message 0299 " in newest  # the latest is kept...
    everything = "".join((tmp_path / f).read_text() for f in files)
    assert "message 0000 " not in everything  # ...the oldest rotated away


def test_unwritable_log_dir_is_reported_not_raised(
    tmp_path: Path, root_restored: None, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    logs.setup(log_dir=blocker / "log")
    err = capsys.readouterr().err
    assert err.startswith(f"ihd: cannot write logs to {blocker / 'log'}")
    assert [type(h).__name__ for h in logging.getLogger().handlers] == ["StreamHandler"]
