"""The ``ihd`` command, run for real in subprocesses, as a householder would run it.

Every demo here is started at once by one module fixture (they run in parallel), so the
whole module costs about as long as its longest demo.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

import ihd
from ihd import config

_SCRIPT = Path(sys.executable).with_name("ihd")
IHD: list[str] = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "ihd.cli"]
DISPLAY_VARS = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")

# One reading line: "<date> <time>  <utility>  <EUI-64>  <quantity> <value> <unit>"
READING = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+(?P<utility>electricity|gas|water)\s+"
    r"(?P<eui>[0-9A-F]{16})\s+(?P<quantity>[a-z0-9]+(?:_[a-z0-9]+)+)\s+"
    r"(?P<value>-?\d+(?:\.\d+)?(?:E[+-]?\d+)?)\s+(?P<unit>\S+)$"
)


def _env(home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment with no display and every XDG dir inside ``home``."""
    env = {k: v for k, v in os.environ.items() if k not in DISPLAY_VARS}
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        env[var] = str(home / sub)
    env.pop("XDG_RUNTIME_DIR", None)
    env.update(extra)
    return env


@dataclass
class Result:
    rc: int
    out: str
    err: str


def ihd_cmd(*args: str | Path, home: Path, env: dict[str, str] | None = None) -> Result:
    p = subprocess.run(
        [*IHD, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(home, **(env or {})),
        cwd=home,
    )
    return Result(p.returncode, p.stdout, p.stderr)


def assert_one_line_error(r: Result, *needles: str) -> None:
    assert r.rc == 1, r
    assert "Traceback" not in r.err
    assert r.out == ""
    assert r.err.endswith("\n") and r.err.count("\n") == 1, r.err
    assert r.err.startswith("ihd: "), r.err
    for n in needles:
        assert n in r.err, (n, r.err)


# --- help, version, usage ------------------------------------------------------------------


def test_help_lists_every_command_and_examples(tmp_path: Path) -> None:
    r = ihd_cmd("--help", home=tmp_path)
    assert r.rc == 0 and r.err == ""
    for word in ("demo", "run", "diag", "config", "version", "examples:"):
        assert word in r.out


def test_demo_help_lists_its_options(tmp_path: Path) -> None:
    r = ihd_cmd("demo", "--help", home=tmp_path)
    assert r.rc == 0
    assert r.out.startswith("usage: ihd demo")
    for opt in (
        "--headless",
        "--screenshot",
        "--run-for",
        "--speed",
        "--history-days",
        "--data-dir",
        "--config",
        "--fresh",
    ):
        assert opt in r.out


@pytest.mark.parametrize("args", [["version"], ["--version"]])
def test_version_is_the_package_version(tmp_path: Path, args: list[str]) -> None:
    r = ihd_cmd(*args, home=tmp_path)
    assert r.rc == 0
    assert r.out == f"ihd {ihd.__version__}\n"
    assert ihd.__version__ == importlib.metadata.version("ihd")  # and what pip installed


def test_no_command_prints_usage_as_an_error(tmp_path: Path) -> None:
    r = ihd_cmd(home=tmp_path)
    assert r.rc == 2
    assert r.out == ""  # a usage error goes to stderr, like argparse's own
    assert r.err.startswith("usage: ihd")
    assert "demo" in r.err


@pytest.mark.parametrize(
    "args, option",
    [
        (["--speed", "0"], "--speed"),
        (["--speed", "-3"], "--speed"),
        (["--speed", "nan"], "--speed"),
        (["--loss", "1.5"], "--loss"),
        (["--corruption", "-0.1"], "--corruption"),
    ],
)
def test_bad_demo_arguments_are_usage_errors_not_tracebacks(
    tmp_path: Path, args: list[str], option: str
) -> None:
    r = ihd_cmd(
        "demo",
        "--headless",
        "--run-for",
        "1",
        "--history-days",
        "0",
        "--data-dir",
        tmp_path / "d",
        *args,
        home=tmp_path,
    )
    assert r.rc == 2
    assert "Traceback" not in r.err
    assert f"argument {option}" in r.err
    assert not (tmp_path / "d").exists()  # rejected before anything was created


def test_data_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    f = tmp_path / "not-a-dir"
    f.write_text("x")
    r = ihd_cmd(
        "demo",
        "--headless",
        "--run-for",
        "1",
        "--history-days",
        "0",
        "--data-dir",
        f,
        home=tmp_path,
    )
    assert_one_line_error(r, str(f))


# --- config ---------------------------------------------------------------------------------

BROKEN = {
    # name: (file content, or None for "a directory"; what the one line must say)
    "invalid_toml": (
        "[tariff.electricity]\nunit_rate = 24.5p\n",
        ["not valid TOML", "line 2", "unit_rate"],
    ),
    "wrong_type": (
        '[tariff.electricity]\nunit_rate = "abc"\n',
        ["tariff.electricity.unit_rate", "'abc'"],
    ),
    "out_of_range": ("[store]\ncommit_interval_s = 0\n", ["store.commit_interval_s", "0.5"]),
    "unknown_key": (
        '[household]\ntimezon = "Europe/London"\n',
        ["household.timezon", "did you mean 'household.timezone'?"],
    ),
    "unknown_timezone": (
        '[household]\ntimezone = "Mars/Olympus"\n',
        ["household.timezone", "Mars/Olympus"],
    ),
    # "Europe" is a directory in the tz database: zoneinfo raises IsADirectoryError for it.
    "timezone_is_a_tz_directory": (
        '[household]\ntimezone = "Europe"\n',
        ["household.timezone", "Europe"],
    ),
    "section_typo": (
        "[tarif.electricity]\nunit_rate = 20\n",
        ["tarif.electricity.unit_rate", "did you mean 'tariff.electricity.unit_rate'?"],
    ),
    # A quoted key may hold a newline; the message must still be one line.
    "key_with_newline": ('"house\\nhold" = 1\n', ["unknown key"]),
    "unreadable": (None, ["cannot read"]),
}


def _broken_file(tmp_path: Path, name: str) -> Path:
    content = BROKEN[name][0]
    path = tmp_path / f"{name}.toml"
    if content is None:
        path.mkdir()
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_config_is_one_line_naming_file_and_key_for_config(
    tmp_path: Path, name: str
) -> None:
    path = _broken_file(tmp_path, name)
    r = ihd_cmd("config", "--config", path, home=tmp_path)
    assert_one_line_error(r, str(path), *BROKEN[name][1])


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_config_is_one_line_naming_file_and_key_for_run(tmp_path: Path, name: str) -> None:
    path = _broken_file(tmp_path, name)
    r = ihd_cmd(
        "run",
        "--config",
        path,
        "--headless",
        "--run-for",
        "1",
        "--data-dir",
        tmp_path / "data",
        home=tmp_path,
    )
    assert_one_line_error(r, str(path), *BROKEN[name][1])
    assert not (tmp_path / "data" / "history.sqlite").exists()  # stopped before the store


def test_missing_config_file_means_defaults(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    r = ihd_cmd("config", "--config", missing, home=tmp_path)
    assert r.rc == 0, r
    assert str(missing) in r.out and "defaults" in r.out
    assert not missing.exists()


def test_config_defaults_to_the_platform_config_dir(tmp_path: Path) -> None:
    r = ihd_cmd("config", home=tmp_path)
    assert r.rc == 0, r
    assert str(tmp_path / "config" / "ihd" / "config.toml") in r.out
    cfg = tmp_path / "config" / "ihd" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("[radio]\nchannel = 99\n")
    r = ihd_cmd("config", home=tmp_path)
    assert_one_line_error(r, str(cfg), "radio.channel")


def test_example_round_trips_to_all_defaults(tmp_path: Path) -> None:
    r = ihd_cmd("config", "--example", home=tmp_path)
    assert r.rc == 0 and r.err == ""
    parsed = config.parse(r.out)
    assert set(parsed.values) == set(config.SCHEMA)  # every key written out, none extra
    for key, spec in config.SCHEMA.items():
        assert parsed.values[key] == spec.default, key
        assert type(parsed.values[key]) is type(spec.default), key
        assert re.search(rf"^{re.escape(key.rsplit('.', 1)[1])} = ", r.out, re.M), key
    # ... and the file it makes is accepted by the command itself.
    example = tmp_path / "example.toml"
    example.write_text(r.out)
    ok = ihd_cmd("config", "--config", example, home=tmp_path)
    assert ok.rc == 0 and ok.out == f"{example}: ok\n"


# --- the running display ------------------------------------------------------------------


@dataclass
class Demos:
    home: Path
    headless: Result
    headless_dir: Path
    no_display: Result
    screenshot: Result
    png: Path
    default_demo: Result
    default_run: Result


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demos]:
    """Start every demo/run at once, wait for all of them, and hand back what they did."""
    home = tmp_path_factory.mktemp("demos")
    runtime = home / "runtime"
    runtime.mkdir()
    png = home / "out.png"
    quick = ("--history-days", "1")
    runs: dict[str, tuple[Sequence[str | Path], dict[str, str]]] = {
        "headless": (
            [
                "demo",
                "--headless",
                "--run-for",
                "12",
                "--speed",
                "10",
                "--data-dir",
                home / "headless",
                *quick,
            ],
            {},
        ),
        "no_display": (
            ["demo", "--run-for", "12", "--speed", "10", "--data-dir", home / "nodisplay", *quick],
            {},
        ),
        "screenshot": (
            ["demo", "--screenshot", png, "--run-for", "3", "--data-dir", home / "shot", *quick],
            {},
        ),
        # No --data-dir: the platform's data dir (XDG_DATA_HOME), separate for demo and run.
        "default_demo": (
            ["demo", "--headless", "--run-for", "3", *quick],
            {"XDG_RUNTIME_DIR": str(runtime)},
        ),
        "default_run": (["run", "--headless", "--run-for", "2"], {"XDG_RUNTIME_DIR": str(runtime)}),
    }
    procs = {
        name: subprocess.Popen(
            [*IHD, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(home, **extra),
            cwd=home,
        )
        for name, (args, extra) in runs.items()
    }
    results: dict[str, Result] = {}
    try:
        for name, p in procs.items():
            out, err = p.communicate(timeout=120)
            results[name] = Result(p.returncode, out, err)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    yield Demos(
        home=home,
        headless=results["headless"],
        headless_dir=home / "headless",
        no_display=results["no_display"],
        screenshot=results["screenshot"],
        png=png,
        default_demo=results["default_demo"],
        default_run=results["default_run"],
    )


def _readings(out: str) -> list[re.Match[str]]:
    lines = out.splitlines()
    matches = [READING.match(line) for line in lines]
    bad = [line for line, m in zip(lines, matches, strict=True) if m is None]
    assert not bad, f"lines that are not one reading: {bad[:3]}"
    return [m for m in matches if m is not None]


def _check_reading_lines(out: str) -> list[re.Match[str]]:
    readings = _readings(out)
    for m in readings:
        # the unit is the one the quantity's name carries (energy_import_wh -> Wh)
        assert m["unit"].lower() == m["quantity"].rsplit("_", 1)[1], m.group(0)
    energy = [m for m in readings if m["quantity"] == "energy_import_wh"]
    # At --speed 10 the electricity meter pushes every wall second: 12 s gives about 12
    # pushes; allow for start-up, losses and corruption.
    assert len(energy) >= 5, readings
    assert all(m["utility"] == "electricity" for m in energy)
    return readings


def test_headless_demo_prints_one_line_per_reading(demos: Demos) -> None:
    r = demos.headless
    assert r.rc == 0, r.err
    assert "Traceback" not in r.err
    assert "no display" not in r.err  # it was asked for, so nothing to explain
    _check_reading_lines(r.out)


def test_demo_without_a_display_says_so_and_runs_headless(demos: Demos) -> None:
    r = demos.no_display
    assert r.rc == 0, r.err
    assert "Traceback" not in r.err
    assert "no display" in r.err.lower()
    _check_reading_lines(r.out)


def test_screenshot_writes_a_png_and_exits(demos: Demos) -> None:
    r = demos.screenshot
    assert r.rc == 0, r.err
    assert "Traceback" not in r.err
    data = demos.png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000  # a rendered screen, not an empty canvas
    assert data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (800, 480)  # the 7" Pi touchscreen (README)


def test_demo_and_run_default_to_different_data_dirs(demos: Demos) -> None:
    assert demos.default_demo.rc == 0, demos.default_demo.err
    assert demos.default_run.rc == 0, demos.default_run.err
    data = demos.home / "data"
    assert (data / "ihd-demo" / "history.sqlite").is_file()
    assert (data / "ihd" / "history.sqlite").is_file()
    # each published its diagnostics in its own runtime dir
    assert (demos.home / "runtime" / "ihd-demo" / "diag.json").is_file()
    assert (demos.home / "runtime" / "ihd" / "diag.json").is_file()


def test_diag_demo_flag_reads_the_demo_dirs(demos: Demos) -> None:
    env = {"XDG_RUNTIME_DIR": str(demos.home / "runtime")}
    demo = json.loads(ihd_cmd("diag", "--demo", "--json", home=demos.home, env=env).out)
    run = json.loads(ihd_cmd("diag", "--json", home=demos.home, env=env).out)
    assert demo["states"]["app.mode"] == "demo"
    assert run["states"]["app.mode"] == "run"
    assert demo["store"]["database"] == str(demos.home / "data" / "ihd-demo" / "history.sqlite")
    assert run["store"]["database"] == str(demos.home / "data" / "ihd" / "history.sqlite")


def test_diag_after_a_demo_shows_store_and_meters(demos: Demos) -> None:
    assert demos.headless.rc == 0
    euis = {m["eui"] for m in _readings(demos.headless.out)}
    r = ihd_cmd("diag", "--data-dir", demos.headless_dir, home=demos.home)
    assert r.rc == 0, r.err
    assert r.err == ""
    assert "counters:" in r.out and "store:" in r.out
    assert re.search(r"^  readings: [1-9]\d*$", r.out, re.M), r.out
    (meters,) = re.findall(r"^  meters: (.*)$", r.out, re.M)
    assert euis and all(eui in meters for eui in euis)
    assert "display not running" in r.out  # the demo has exited


def test_diag_json_has_the_counters_the_demo_left(demos: Demos) -> None:
    r = ihd_cmd("diag", "--data-dir", demos.headless_dir, "--json", home=demos.home)
    assert r.rc == 0, r.err
    out = json.loads(r.out)
    counters = out["counters"]
    pushes = {(m["eui"], m.group(0)[:19]) for m in _readings(demos.headless.out)}
    # every push the demo printed came from a frame that passed the FCS and MAC checks
    assert counters["smwap.frames_ok"] >= len(pushes) > 0
    assert counters["store.commits"] >= 1
    assert out["states"]["app.mode"] == "demo"
    assert out["process"]["running"] is False  # its last snapshot was written on exit
    assert out["store"]["readings"] > 0
    assert out["store"]["database"] == str(demos.headless_dir / "history.sqlite")


def test_diag_with_no_history(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    r = ihd_cmd("diag", "--data-dir", empty, home=tmp_path)
    assert r.rc == 0, r.err
    assert "no history" in r.out
    j = ihd_cmd("diag", "--data-dir", empty, "--json", home=tmp_path)
    assert j.rc == 0
    out = json.loads(j.out)
    assert out["process"]["running"] is False
    assert "no history" in out["store"]["note"]
    assert list(empty.iterdir()) == []  # diag only looks


def test_diag_with_a_corrupt_snapshot_is_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "d" / "run").mkdir(parents=True)
    (tmp_path / "d" / "run" / "diag.json").write_text('{"counters": ')
    r = ihd_cmd("diag", "--data-dir", tmp_path / "d", home=tmp_path)
    assert r.rc == 0, r.err
    assert "Traceback" not in r.err
    assert "unreadable snapshot" in r.out


def test_diag_with_a_corrupt_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    db = tmp_path / "d" / "history.sqlite"
    db.write_bytes(b"this is not an SQLite database, just some text" * 100)
    r = ihd_cmd("diag", "--data-dir", tmp_path / "d", home=tmp_path)
    assert_one_line_error(r, str(db))
