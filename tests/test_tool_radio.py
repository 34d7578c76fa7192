"""``ihd radio probe`` and ``ihd radio scan``, run for real as subprocesses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

_SCRIPT = Path(sys.executable).with_name("ihd")
IHD: list[str] = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "ihd.cli"]


def ihd(tmp_path: Path, *args: str, config: str = "") -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    return subprocess.run(
        [*IHD, "radio", *args, "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_probe_finds_the_emulated_chip_by_its_part_number(tmp_path: Path) -> None:
    r = ihd(tmp_path, "probe", "--emulated")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "RF_PN 0x34" in r.stdout and "Traceback" not in r.stderr


def test_probe_without_hardware_says_what_is_missing(tmp_path: Path) -> None:
    r = ihd(
        tmp_path,
        "probe",
        config='[radio]\ntype = "at86rf215"\nspi_device = "/dev/spidev9.9"\n',
    )
    assert r.returncode == 1
    assert "/dev/spidev9.9 not found" in r.stdout and "dtparam=spi=on" in r.stdout
    assert "hw/README.md" in r.stdout and "Traceback" not in r.stderr


def test_scan_prints_every_channel_with_its_frequency(tmp_path: Path) -> None:
    r = ihd(tmp_path, "scan")  # the configured radio: the simulated one by default
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 34
    for ch, line in enumerate(lines):
        m = re.match(r"channel +(\d+) +(\d+\.\d{3}) MHz +(-?\d+) dBm", line)
        assert m is not None, line
        assert int(m[1]) == ch
        assert m[2] == f"{863.125 + 0.2 * ch:.3f}"  # EU mode #1: 200 kHz from 863.125 MHz
        assert -130 <= int(m[3]) <= 20


def test_scan_on_the_emulated_chip_and_bad_channels(tmp_path: Path) -> None:
    r = ihd(tmp_path, "scan", "--emulated", "--channels", "0-2,33")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [line.split()[1] for line in r.stdout.splitlines()] == ["0", "1", "2", "33"]
    bad = ihd(tmp_path, "scan", "--channels", "0-40")
    assert bad.returncode == 2 and "0..33" in bad.stderr
