"""``ihd whatif`` (the stored history under another tariff) and ``ihd reprice`` (the
stored history under a corrected tariff, minutes and rollups in one transaction)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import zoneinfo
from pathlib import Path

import pytest

from ihd import paths
from ihd.app.control import ControlServer
from ihd.cli import main
from ihd.diag import Diagnostics
from ihd.meter.reading import Utility
from ihd.store import Batch, Store, StoreReader, Usage
from ihd.store.calendar import Calendar
from ihd.store.schema import ROLLUP_TABLES
from ihd.tariff.flat import tariffs_from_config
from ihd.tools.tariff import compare, load_tariff_file

LONDON = zoneinfo.ZoneInfo("Europe/London")
E1, E2 = "00000000000000E1", "00000000000000E2"
G1 = "00000000000000A1"


def local_ms(*args: int) -> int:
    return round(dt.datetime(*args, tzinfo=LONDON).timestamp() * 1000)


def write(tmp_path: Path, usage: list[Usage]) -> paths.Paths:
    p = paths.resolve(demo=False, data_dir=tmp_path / "d")
    with Store(p.database, diag=Diagnostics(), tz="Europe/London") as store:
        store.write_now(Batch(usage=usage))
    return p


def ten_kwh(tmp_path: Path) -> paths.Paths:
    """10 kWh on 10 March 2026, 12:00-12:10, as 10 minutes of 1 kWh priced at the
    default 24.50 p/kWh: 24.50 p = 24 500 milli-pence a minute, 245.00 p in all."""
    t0 = local_ms(2026, 3, 10, 12, 0)
    return write(
        tmp_path,
        [
            Usage(E1, Utility.ELECTRICITY, t0 + k * 60_000, 1000.0, 1000.0, 24_500)
            for k in range(10)
        ],
    )


def toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


CONFIG = "[tariff.electricity]\nunit_rate = 24.50\nstanding_charge = 60.10\n"
CHEAP = '[tariff.electricity]\nname = "Cheap"\nunit_rate = 20.00\nstanding_charge = 50.00\n'


def ihd(p: paths.Paths, config: Path, *args: str) -> int:
    return main([*args, "--data-dir", str(p.data_dir), "--config", str(config)])


# ------------------------------------------------------------------ whatif


def test_whatif_hand_computed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = ten_kwh(tmp_path)
    cfg_file = toml(tmp_path / "config.toml", CONFIG)
    cheap = toml(tmp_path / "cheap.toml", CHEAP)
    from ihd import config

    cfg = config.load(cfg_file)
    other = load_tariff_file(cheap, cfg)[Utility.ELECTRICITY]
    with StoreReader(p.database) as reader:
        w = compare(
            reader,
            Utility.ELECTRICITY,
            tariffs_from_config(cfg)[Utility.ELECTRICITY],
            other,
            None,
            None,
        )
    assert w is not None
    assert w.amount == 10_000  # Wh
    [month] = w.months
    assert month.now_milli == 245_000  # as stored: 10 kWh x 24.50 p
    assert month.other_milli == 200_000  # 10 kWh x 20.00 p
    # The span is the one local day the usage touches: one standing charge each.
    assert (w.standing_now, w.standing_other) == (60_100, 50_000)
    assert (w.now_total, w.other_total) == (305_100, 250_000)

    assert ihd(p, cfg_file, "whatif", "--tariff", str(cheap)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("electricity: now") and "Cheap" in out[0]
    assert out[2].split() == ["2026-03-10", "10.00", "kWh", "£2.45", "£2.00", "-£0.45"]
    assert out[3].split() == ["standing", "£0.60", "£0.50", "-£0.10"]
    # £3.051 rounds to £3.05; 3.051 - 2.50 = 0.551 -> -£0.55
    assert out[4].split() == ["total", "10.00", "kWh", "£3.05", "£2.50", "-£0.55"]

    # A whole month in --from/--to is named by the month; a span outside has no usage.
    assert (
        ihd(
            p,
            cfg_file,
            "whatif",
            "--tariff",
            str(cheap),
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[2].split()[0] == "2026-03"
    assert out[3].split() == ["standing", "£18.63", "£15.50", "-£3.13"]  # 31 days
    assert ihd(p, cfg_file, "whatif", "--tariff", str(cheap), "--from", "2026-04-01") == 1
    assert "no usage history" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (None, "no such file"),
        ("[tariff.electricity\n", "not valid TOML"),
        ("[household]\nx = 1\n", "no [tariff.<utility>] table"),
        ("[tariff.heat]\nunit_rate = 1\n", "tariff.heat: not a utility"),
        ("[tariff.electricity]\nrate = 1\n", "tariff.electricity.rate: unknown key"),
    ],
)
def test_whatif_bad_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, why: str
) -> None:
    p = ten_kwh(tmp_path)
    f = tmp_path / "t.toml"
    if text is not None:
        toml(f, text)
    assert ihd(p, toml(tmp_path / "c.toml", CONFIG), "whatif", "--tariff", str(f)) == 1
    err = capsys.readouterr().err
    assert err.startswith("ihd whatif: ") and why in err and err.count("\n") == 1


def test_whatif_without_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = paths.resolve(demo=False, data_dir=tmp_path / "empty")
    cheap = toml(tmp_path / "cheap.toml", CHEAP)
    assert ihd(p, toml(tmp_path / "c.toml", CONFIG), "whatif", "--tariff", str(cheap)) == 1
    err = capsys.readouterr().err
    assert err.startswith("ihd whatif: no history at") and err.count("\n") == 1


# ------------------------------------------------------------------ reprice


def two_days(tmp_path: Path) -> paths.Paths:
    """Two electricity meters and a gas meter over two local days (across midnight and
    several hours), all priced at the old rates."""
    usage = []
    for day in (10, 11):
        t0 = local_ms(2026, 3, day, 22, 50) if day == 10 else local_ms(2026, 3, day, 9, 0)
        for k in range(90):  # 1.5 hours, into the next day on the 10th
            m = t0 + k * 60_000
            usage.append(Usage(E1, Utility.ELECTRICITY, m, 100.0, 100.0, 2_450))  # 24.50 p/kWh
            usage.append(Usage(E2, Utility.ELECTRICITY, m, 50.0, 50.0, 1_225))
            usage.append(Usage(G1, Utility.GAS, m, 0.01, 111.0, 693))
    return write(tmp_path, usage)


def dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db) as conn:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
            for t in ("usage", *ROLLUP_TABLES)
        }


def assert_rollups_are_sums(db: Path) -> None:
    cal = Calendar("Europe/London")
    sums: list[dict[tuple[str, int], int]] = [{}, {}, {}]
    with sqlite3.connect(db) as conn:
        for meter, minute, cost in conn.execute("SELECT meter, minute_ms, cost_milli FROM usage"):
            for level, start in zip(sums, cal.buckets(minute), strict=True):
                level[(meter, start)] = level.get((meter, start), 0) + cost
        for table, want in zip(ROLLUP_TABLES, sums, strict=True):
            got = {
                (m, s): c
                for m, s, c in conn.execute(f"SELECT meter, start_ms, cost_milli FROM {table}")
            }
            assert got == want, table


def costs(db: Path, meter: str) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [
            c
            for (c,) in conn.execute(
                "SELECT cost_milli FROM usage WHERE meter = ? ORDER BY minute_ms", (meter,)
            )
        ]


def test_reprice_writes_minutes_and_rollups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = two_days(tmp_path)
    cfg = toml(
        tmp_path / "c.toml", "[tariff.electricity]\nunit_rate = 20.00\nstanding_charge = 1\n"
    )
    assert_rollups_are_sums(p.database)
    gas_before = costs(p.database, G1)

    # --dry-run: counted, nothing written.
    before = dump(p.database)
    assert ihd(p, cfg, "reprice", "--utility", "electricity", "--dry-run") == 0
    out = capsys.readouterr().out
    assert dump(p.database) == before
    # 360 minutes: E1 180 x 2.45 p = 441.0 p, E2 180 x 1.225 p = 220.5 p: 661.5 p, shown
    # £6.62 (half-even); at 20.00 p/kWh 2.00 p and 1.00 p a minute: 360 p + 180 p = £5.40.
    assert "electricity: 360 of 360 minutes would change" in out
    assert "£6.62 -> £5.40 (-£1.22)" in out and "dry run: nothing was written" in out

    assert ihd(p, cfg, "reprice", "--utility", "electricity") == 0
    out = capsys.readouterr().out
    assert "electricity: 360 of 360 minutes changed" in out and "£5.40" in out
    assert costs(p.database, E1) == [2_000] * 180  # 100 Wh x 20.00 p/kWh = 2.00 p
    assert costs(p.database, E2) == [1_000] * 180
    assert costs(p.database, G1) == gas_before  # another utility: untouched
    assert_rollups_are_sums(p.database)
    with StoreReader(p.database) as reader:
        t0, t1 = local_ms(2026, 3, 1) / 1000, local_ms(2026, 4, 1) / 1000
        assert reader.cost_between(t0, t1, Utility.ELECTRICITY) == 180 * 2_000 + 180 * 1_000

    # Again: nothing left to change.
    assert ihd(p, cfg, "reprice", "--utility", "electricity") == 0
    assert "0 of 360 minutes changed" in capsys.readouterr().out


def test_reprice_from_a_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = two_days(tmp_path)
    cfg = toml(
        tmp_path / "c.toml", "[tariff.electricity]\nunit_rate = 30.00\nstanding_charge = 1\n"
    )
    assert ihd(p, cfg, "reprice", "--from", "2026-03-11", "--utility", "electricity") == 0
    # From local midnight of the 11th: the 10th's 70 minutes (22:50-24:00) keep 2.45 p,
    # the 20 after midnight and the 90 of the morning get 100 Wh x 30 p = 3.00 p.
    assert costs(p.database, E1) == [2_450] * 70 + [3_000] * 110
    assert "220 of 220 minutes changed" in capsys.readouterr().out
    assert_rollups_are_sums(p.database)


def test_reprice_refused_while_the_display_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = two_days(tmp_path)
    cfg = toml(
        tmp_path / "c.toml", "[tariff.electricity]\nunit_rate = 20.00\nstanding_charge = 1\n"
    )
    before = dump(p.database)
    control = ControlServer(p.control_socket, {})
    control.start()
    try:
        assert ihd(p, cfg, "reprice") == 2
    finally:
        control.stop()
    err = capsys.readouterr().err
    assert err.startswith("ihd reprice: the display is running") and err.count("\n") == 1
    assert dump(p.database) == before


def test_reprice_without_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = paths.resolve(demo=False, data_dir=tmp_path / "empty")
    assert ihd(p, toml(tmp_path / "c.toml", CONFIG), "reprice") == 1
    assert capsys.readouterr().err.startswith("ihd reprice: no history at")
