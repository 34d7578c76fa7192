"""A short run of benchmarks/fuzz_smwap.py, so CI exercises the fuzzer and its contracts.

The full run (10^6 inputs per target) is ``.venv/bin/python benchmarks/fuzz_smwap.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_smwap.py"


@pytest.fixture(scope="module")
def fuzz_smwap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_smwap", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_fuzz_run_has_no_unexpected_exception(fuzz_smwap: ModuleType) -> None:
    report = fuzz_smwap.fuzz(2000, seed=1)
    assert report.total_unexpected == 0, "\n\n".join(report.failures)
    for target in fuzz_smwap.TARGETS:
        assert report.tried[target] == 2000
        # Both sides of every contract were reached: some inputs pass, some are refused.
        assert report.accepted[target] > 0
        assert sum(report.rejected[target].values()) > 0
        assert report.accepted[target] + sum(report.rejected[target].values()) == 2000
    # The receiver reached the cryptography with fresh counters, not only the cheap checks.
    assert report.rejected["receiver"]["mic_failure"] > 0
    assert report.rejected["receiver"]["replay"] > 0


def test_unexpected_exceptions_are_counted_and_kept(fuzz_smwap: ModuleType) -> None:
    report = fuzz_smwap.Report()
    for i in range(fuzz_smwap.MAX_FAILURES + 2):
        report.fail("mac", bytes([i]), "Traceback ...")
    assert report.total_unexpected == fuzz_smwap.MAX_FAILURES + 2
    assert len(report.failures) == fuzz_smwap.MAX_FAILURES
    assert report.failures[0].startswith("target mac, input (1 octets) 00")


def test_main_exit_status(fuzz_smwap: ModuleType, tmp_path: Path) -> None:
    failures = tmp_path / "failures.txt"
    assert fuzz_smwap.main(["--count", "50", "--jobs", "1", "--failures", str(failures)]) == 0
    assert not failures.exists()
