"""The config file: typed keys, defaults, and one-line errors that name the file and key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ihd import config, paths
from ihd.config import Config, ConfigError, load, parse
from ihd.meter.reading import Utility

SRC = Path("/etc/ihd/config.toml")


def error(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        parse(text, SRC)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{SRC}: "), msg
    return msg


def test_empty_file_is_all_defaults() -> None:
    cfg = parse("", SRC)
    assert cfg.source == SRC and dict(cfg.values) == {}
    assert cfg.timezone == "Europe/London"
    assert cfg["store.commit_interval_s"] == 10.0
    assert cfg.tariff(Utility.ELECTRICITY) == config.TariffConfig(
        Decimal("24.50"), Decimal("60.10")
    )


def test_values_are_parsed_to_their_types() -> None:
    cfg = parse("""
[household]
timezone = "Europe/Dublin"
currency = "EUR"
[radio]
channel = 33
fcs_len = 2
[store]
commit_interval_s = 30
[tariff.gas]
unit_rate = 0.1
standing_charge = "31.5"
calorific_value_mj_m3 = 40
""")
    assert cfg.timezone == "Europe/Dublin"
    assert cfg["household.currency"] == "EUR"
    assert cfg["radio.channel"] == 33
    assert cfg["radio.fcs_len"] == 2
    assert cfg["store.commit_interval_s"] == 30.0
    assert isinstance(cfg["store.commit_interval_s"], float)
    # A TOML float becomes the decimal it was written as, not its binary approximation.
    assert cfg.tariff(Utility.GAS) == config.TariffConfig(Decimal("0.1"), Decimal("31.5"))
    assert cfg["tariff.gas.calorific_value_mj_m3"] == 40.0
    assert cfg.tariff(Utility.WATER).unit_rate == Decimal("215")  # untouched: default


def test_bounds_are_inclusive() -> None:
    assert parse("[store]\ncommit_interval_s = 0.5\n")["store.commit_interval_s"] == 0.5
    assert parse("[store]\ncommit_interval_s = 600\n")["store.commit_interval_s"] == 600.0
    assert parse("[radio]\nchannel = 0\n")["radio.channel"] == 0
    assert parse("[tariff.water]\nunit_rate = 0\n").tariff(Utility.WATER).unit_rate == 0


@pytest.mark.parametrize(
    "text, key, reason",
    [
        ('[tariff.electricity]\nunit_rate = "abc"', "tariff.electricity.unit_rate", "'abc'"),
        ("[tariff.electricity]\nunit_rate = -1", "tariff.electricity.unit_rate", "non-negative"),
        ("[tariff.electricity]\nunit_rate = nan", "tariff.electricity.unit_rate", "nan"),
        ("[tariff.electricity]\nunit_rate = inf", "tariff.electricity.unit_rate", "inf"),
        ("[tariff.electricity]\nunit_rate = true", "tariff.electricity.unit_rate", "True"),
        ("[tariff.gas]\nstanding_charge = [1]", "tariff.gas.standing_charge", "[1]"),
        ("[store]\ncommit_interval_s = 0", "store.commit_interval_s", "between 0.5 and 600"),
        ("[store]\ncommit_interval_s = 0.49", "store.commit_interval_s", "0.49"),
        ("[store]\ncommit_interval_s = 600.5", "store.commit_interval_s", "600.5"),
        ("[store]\ncommit_interval_s = true", "store.commit_interval_s", "number"),
        ('[store]\ncommit_interval_s = "10"', "store.commit_interval_s", "'10'"),
        ("[radio]\nchannel = 34", "radio.channel", "between 0 and 33"),
        ("[radio]\nchannel = -1", "radio.channel", "-1"),
        ("[radio]\nchannel = 1.0", "radio.channel", "whole number"),
        ("[radio]\nfcs_len = 3", "radio.fcs_len", "3"),
        ('[radio]\ntype = "cc2531"', "radio.type", "'at86rf215'"),
        ('[household]\ncurrency = "USD"', "household.currency", "'GBP', 'EUR'"),
        ("[household]\ntimezone = 0", "household.timezone", "string"),
        ('[household]\ntimezone = "Mars/Olympus"', "household.timezone", "'Mars/Olympus'"),
        ('[household]\ntimezone = ""', "household.timezone", "unknown timezone"),
        ('[household]\ntimezone = "../../etc/passwd"', "household.timezone", "unknown timezone"),
        # directories and non-zone files in the tz database are not timezones either
        ('[household]\ntimezone = "Europe"', "household.timezone", "unknown timezone"),
        ('[household]\ntimezone = "zone.tab"', "household.timezone", "unknown timezone"),
        ("[tariff.gas]\ncalorific_value_mj_m3 = 29.9", "tariff.gas.calorific_value_mj_m3", "30"),
    ],
)
def test_bad_value_names_file_and_key(text: str, key: str, reason: str) -> None:
    msg = error(text)
    assert msg.startswith(f"{SRC}: {key}: "), msg
    assert reason in msg


def test_unknown_key_suggests_the_nearest() -> None:
    msg = error('[household]\ntimezon = "Europe/London"')
    assert msg == (f"{SRC}: household.timezon: unknown key (did you mean 'household.timezone'?)")


def test_misspelt_section_suggests_the_full_key() -> None:
    msg = error("[tarif.electricity]\nunit_rate = 20")
    assert "tarif.electricity.unit_rate: unknown key" in msg
    assert "did you mean 'tariff.electricity.unit_rate'?" in msg


def test_unknown_key_with_nothing_near_has_no_suggestion() -> None:
    msg = error("[zzz]\nqqq = 1")
    assert msg == f"{SRC}: zzz.qqq: unknown key"


def test_a_table_where_a_value_belongs_is_an_unknown_key() -> None:
    msg = error("[household.timezone]\nname = 'Europe/London'")
    assert "household.timezone.name: unknown key" in msg


def test_key_with_a_newline_stays_one_line() -> None:
    msg = error('"a\\nb" = 1')  # TOML escape: the key holds a real newline
    assert "'a\\nb'" in msg  # shown escaped


@pytest.mark.parametrize(
    "text, line, quoted",
    [
        ("[tariff.electricity]\nunit_rate = 24.5p\n", 2, "unit_rate = 24.5p"),
        ("[store]\ncommit_interval_s = 10\ncommit_interval_s = 20\n", 3, "commit_interval_s = 20"),
        ("[tariff.electricity\nunit_rate = 1\n", 1, "[tariff.electricity"),
    ],
)
def test_invalid_toml_names_line_and_shows_it(text: str, line: int, quoted: str) -> None:
    msg = error(text)
    assert "not valid TOML" in msg
    assert f"line {line}" in msg
    assert repr(quoted) in msg


def test_invalid_toml_at_end_of_file_is_still_one_line() -> None:
    msg = error("[household]\ntimezone = [\n")
    assert "not valid TOML" in msg


def test_parse_without_source_says_config() -> None:
    with pytest.raises(ConfigError, match=r"^<config>: radio.channel: "):
        parse("[radio]\nchannel = 99")


def test_load_reads_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[household]\ncurrency = "EUR"\n', encoding="utf-8")
    cfg = load(path)
    assert cfg.source == path
    assert cfg["household.currency"] == "EUR"


def test_missing_file_is_defaults_unless_required(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    cfg = load(path)
    assert cfg.source is None and dict(cfg.values) == {}
    assert cfg["household.currency"] == "GBP"
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file$"):
        load(path, missing_ok=False)


def test_unreadable_files_are_one_line(tmp_path: Path) -> None:
    directory = tmp_path / "dir.toml"
    directory.mkdir()
    with pytest.raises(ConfigError) as e:
        load(directory)
    assert str(e.value).startswith(f"{directory}: cannot read")
    assert "\n" not in str(e.value)
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('[household]\ntimezone = "Europe/Zürich"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as e:
        load(latin1)
    assert str(e.value).startswith(f"{latin1}: cannot read")


def test_errors_from_load_name_the_path(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[tariff.electricity]\nunit_rate = "abc"\n')
    with pytest.raises(ConfigError) as e:
        load(path)
    assert str(e.value) == (
        f"{path}: tariff.electricity.unit_rate: expected a decimal number, got 'abc'"
    )


def test_example_round_trips_and_documents_every_key() -> None:
    text = config.example()
    cfg = parse(text)
    assert set(cfg.values) == set(config.SCHEMA)
    for key, spec in config.SCHEMA.items():
        assert cfg.values[key] == spec.default and type(cfg.values[key]) is type(spec.default)
        assert f"# {spec.doc}\n" in text, key
    assert all(
        line == "" or line.startswith(("#", "[")) or " = " in line for line in text.splitlines()
    )


def test_config_default_lookup() -> None:
    cfg = Config()
    for key, spec in config.SCHEMA.items():
        assert cfg[key] == spec.default
    with pytest.raises(KeyError):
        cfg["no.such.key"]


# --- where things live (ihd.paths) ----------------------------------------------------------


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every XDG dir into tmp_path; platformdirs reads them at call time."""
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    return tmp_path


def test_config_file_is_in_the_platform_config_dir(xdg: Path) -> None:
    assert paths.default_config_file() == xdg / "config" / "ihd" / "config.toml"
    for demo in (False, True):
        assert paths.resolve(demo=demo).config_file == xdg / "config" / "ihd" / "config.toml"


def test_demo_and_run_never_share_a_data_dir(xdg: Path) -> None:
    run, demo = paths.resolve(demo=False), paths.resolve(demo=True)
    assert run.data_dir == xdg / "data" / "ihd"
    assert demo.data_dir == xdg / "data" / "ihd-demo"
    assert run.database == xdg / "data" / "ihd" / "history.sqlite"
    assert demo.database == xdg / "data" / "ihd-demo" / "history.sqlite"
    assert run.log_dir != demo.log_dir
    assert run.log_dir.is_relative_to(xdg / "state")  # logs are state, not data
    # no XDG_RUNTIME_DIR: the snapshot goes under each one's own data dir
    assert run.diag_snapshot == run.data_dir / "run" / "diag.json"
    assert demo.diag_snapshot == demo.data_dir / "run" / "diag.json"


def test_runtime_dir_uses_xdg_runtime_dir_when_it_exists(
    xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = xdg / "runtime"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert paths.resolve(demo=False).runtime_dir == xdg / "data" / "ihd" / "run"  # not there
    runtime.mkdir()
    assert paths.resolve(demo=False).diag_snapshot == runtime / "ihd" / "diag.json"
    assert paths.resolve(demo=True).diag_snapshot == runtime / "ihd-demo" / "diag.json"


def test_flags_override_every_path(xdg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (xdg / "runtime").mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg / "runtime"))
    mine, cfg = xdg / "mine", xdg / "elsewhere.toml"
    for demo in (False, True):
        p = paths.resolve(demo=demo, config_file=cfg, data_dir=mine)
        assert p == paths.Paths(
            config_file=cfg,
            data_dir=mine,
            log_dir=mine / "log",
            runtime_dir=mine / "run",
            keys_file=mine / "keys.json",
        )


def test_ensure_creates_the_dirs_and_nothing_else(xdg: Path) -> None:
    p = paths.resolve(demo=True)
    assert not p.data_dir.exists()
    p.ensure()
    p.ensure()  # idempotent
    assert p.data_dir.is_dir() and p.log_dir.is_dir() and p.runtime_dir.is_dir()
    assert not p.database.exists()
    assert not (xdg / "data" / "ihd").exists()
    assert not p.config_file.exists()  # the config is the householder's to write
