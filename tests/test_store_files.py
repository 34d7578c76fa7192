"""The history file as a whole: ``ihd backup`` while the display writes, ``ihd restore``
(refused while the display runs or anything has the file open), ``ihd export --csv``."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import os
import sqlite3
import subprocess
import sys
import threading
import zoneinfo
from pathlib import Path

import pytest

from ihd import paths
from ihd.app.control import ControlServer
from ihd.cli import main
from ihd.diag import Diagnostics
from ihd.meter.reading import Reading, Utility
from ihd.store import Batch, MeterInfo, Store, StoreError, StoreReader, Usage, minute_ms
from ihd.store.files import PREVIOUS_SUFFIX, backup, export_csv, restore
from ihd.store.schema import SCHEMA_VERSION

E1 = "ACDE480000000001"
G1 = "ACDE48000000000A"
LONDON = zoneinfo.ZoneInfo("Europe/London")
_SCRIPT = Path(sys.executable).parent / "ihd"
IHD: list[str] = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "ihd.cli"]


def local(*args: int) -> float:
    return dt.datetime(*args, tzinfo=LONDON).timestamp()  # type: ignore[misc]


def push(k: int, t0: float = 0.0) -> Batch:
    """The k-th 10 s electricity push of a steady 360 W load (1 Wh, 245 milli)."""
    t = (t0 or local(2025, 3, 29, 23)) + 10 * k
    return Batch(
        readings=[Reading(E1, Utility.ELECTRICITY, "energy_import_wh", 1000 + k, 0, t)],
        usage=[Usage(E1, Utility.ELECTRICITY, minute_ms(t - 0.001), 1.0, 1.0, 245)] if k else [],
        meters=[MeterInfo(E1, Utility.ELECTRICITY, "Electricity", round(t * 1000))],
        state={"fc": str(k)},
    )


def seeded(data_dir: Path, pushes: int = 2000) -> Path:
    p = paths.resolve(demo=False, data_dir=data_dir)
    p.ensure()
    store = Store(p.database, diag=Diagnostics())
    batches = [push(k) for k in range(pushes)]
    store.write_now(
        Batch(
            readings=[r for b in batches for r in b.readings],
            usage=[u for b in batches for u in b.usage],
            meters=batches[-1].meters,
        )
    )
    store.close()
    return p.database


def contents(db: Path) -> dict[str, object]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
            for t in ("readings", "usage", "usage_hour", "usage_day", "usage_month", "meters")
        }


# ------------------------------------------------------------------ backup


def test_backup_while_the_writer_commits_is_one_consistent_commit(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    diag = Diagnostics()
    store = Store(db, diag=diag, commit_interval_s=0.01)
    store.start()
    stop = threading.Event()

    def produce() -> None:
        k = 0
        while not stop.is_set():
            store.submit(push(k))
            k += 1
            if k % 20 == 0:
                stop.wait(0.002)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        copies = []
        for i in range(5):
            while diag.counter("store.commits") < 5 * (i + 1):
                stop.wait(0.01)
            copies.append(backup(db, tmp_path / f"copy{i}.sqlite"))
    finally:
        stop.set()
        producer.join()
        store.close()
    sizes = set()
    for info in copies:
        assert info.schema_version == SCHEMA_VERSION
        assert not Path(str(info.path) + "-wal").exists()  # a self-contained file
        with contextlib.closing(sqlite3.connect(info.path)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            n = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
            # one commit's state: readings 0..n-1, the frame-counter state of the last,
            # usage and its rollups for exactly those pushes
            assert conn.execute("SELECT value FROM state WHERE key = 'fc'").fetchone()[0] == str(
                n - 1
            )
            assert conn.execute("SELECT sum(cost_milli) FROM usage").fetchone()[0] == 245 * (n - 1)
            for t in ("usage_hour", "usage_day", "usage_month"):
                assert conn.execute(f"SELECT sum(cost_milli) FROM {t}").fetchone()[0] == 245 * (
                    n - 1
                )
        sizes.add(n)
    assert len(sizes) == 5 and info.readings == max(sizes)


def test_backup_refuses_itself_a_directory_and_a_missing_file(tmp_path: Path) -> None:
    db = seeded(tmp_path / "d", 10)
    with pytest.raises(StoreError, match="history file itself"):
        backup(db, db)
    with pytest.raises(StoreError, match="is a directory"):
        backup(db, tmp_path)
    with pytest.raises(StoreError, match="no such file"):
        backup(tmp_path / "nothing.sqlite", tmp_path / "b.sqlite")
    with pytest.raises(StoreError, match=r"backup to .* failed"):
        backup(db, tmp_path / "no" / "such" / "dir.sqlite")
    assert {p.name for p in tmp_path.iterdir()} == {"d"}  # no half-written file left


# ------------------------------------------------------------------ restore


def test_restore_swaps_the_file_and_keeps_the_one_it_replaced(tmp_path: Path) -> None:
    db = seeded(tmp_path / "d", 300)
    saved = backup(db, tmp_path / "saved.sqlite")
    before = contents(db)
    store = Store(db, diag=Diagnostics())  # more history after the backup
    store.write_now(push(5000))
    store.close()
    after = contents(db)
    assert after != before

    info = restore(saved.path, db)
    assert info.readings == 300 and info.schema_version == SCHEMA_VERSION
    assert contents(db) == before
    assert contents(db.with_name(db.name + PREVIOUS_SUFFIX)) == after
    assert not [p for p in db.parent.iterdir() if p.name.endswith(("-wal", "-shm", ".tmp"))]
    store = Store(db, diag=Diagnostics())  # the display opens it again
    with store.reader() as r:
        assert r.counts()["readings"] == 300
    store.close()


def test_restore_refuses_a_file_in_use_and_bad_backups_and_changes_nothing(
    tmp_path: Path,
) -> None:
    db = seeded(tmp_path / "d", 50)
    good = backup(db, tmp_path / "good.sqlite").path
    before = db.read_bytes()
    reader = StoreReader(db)  # something still has the history open
    reader.counts()
    with pytest.raises(StoreError, match="in use"):
        restore(good, db)
    reader.close()
    assert db.read_bytes() == before

    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    foreign = tmp_path / "foreign.sqlite"
    with contextlib.closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE t (x)")
    newer = tmp_path / "newer.sqlite"
    newer.write_bytes(good.read_bytes())
    with contextlib.closing(sqlite3.connect(newer)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    damaged = tmp_path / "damaged.sqlite"
    data = bytearray(good.read_bytes())
    data[4096 * 3 : 4096 * 3 + 200] = b"\xff" * 200  # a b-tree page scribbled over
    damaged.write_bytes(bytes(data))
    for bad, why in (
        (junk, "not an SQLite database|file is not a database"),
        (foreign, "not an ihd history"),
        (newer, "newer than this ihd"),
        (damaged, "damaged|malformed"),
        (tmp_path / "missing.sqlite", "no such file"),
        (db, "history file itself"),
    ):
        with pytest.raises(StoreError, match=why):
            restore(bad, db)
        assert db.read_bytes() == before
    assert not db.with_name(db.name + PREVIOUS_SUFFIX).exists()


def test_cli_backup_and_restore_refused_while_the_display_runs(tmp_path: Path) -> None:
    data = tmp_path / "d"
    db = seeded(data, 100)
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}

    def ihd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*IHD, *args, "--data-dir", str(data)], capture_output=True, text=True, env=env
        )

    p = paths.resolve(demo=False, data_dir=data)
    control = ControlServer(p.control_socket, {"status": lambda req, reply: reply({"ok": True})})
    control.start()
    try:
        r = ihd("backup", str(tmp_path / "b.sqlite"))  # fine while running
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"backed up {db} to {tmp_path / 'b.sqlite'}")
        assert "100 readings" in r.stdout
        r = ihd("restore", str(tmp_path / "b.sqlite"))
        assert r.returncode == 2
        assert r.stderr.startswith("ihd restore: the display is running")
        assert r.stderr.count("\n") == 1
    finally:
        control.stop()
    r = ihd("restore", str(tmp_path / "b.sqlite"))
    assert r.returncode == 0, r.stderr
    assert "restored" in r.stdout and db.with_name(db.name + PREVIOUS_SUFFIX).exists()
    r = ihd("restore", str(tmp_path / "nope.sqlite"))
    assert r.returncode == 1 and r.stderr.startswith("ihd restore: ")
    assert r.stderr.count("\n") == 1


# ------------------------------------------------------------------ export


def export_store(tmp_path: Path) -> Path:
    data = tmp_path / "d"
    p = paths.resolve(demo=False, data_dir=data)
    p.ensure()
    store = Store(p.database, diag=Diagnostics())
    t0 = local(2025, 3, 29, 23, 58)  # across midnight and the spring change
    batches = [push(k, t0) for k in range(1 + 6 * 60 * 3)]  # three hours of 10 s pushes
    store.write_now(
        Batch(
            readings=[r for b in batches for r in b.readings],
            usage=[u for b in batches for u in b.usage],
            meters=batches[-1].meters,
        )
    )
    gas_t = local(2025, 3, 30, 0, 30)
    store.write_now(
        Batch(
            readings=[Reading(G1, Utility.GAS, "volume_m3", 1234567, -3, gas_t)],
            usage=[Usage(G1, Utility.GAS, minute_ms(gas_t - 0.001), 0.25, 2812.5, 1500)],
            meters=[MeterInfo(G1, Utility.GAS, "Gas", round(gas_t * 1000))],
        )
    )
    store.close()
    return data


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_export_csv_per_minute_hour_day_month_and_raw(tmp_path: Path) -> None:
    data = export_store(tmp_path)
    db = paths.resolve(demo=False, data_dir=data).database
    with StoreReader(db) as reader:
        out = io.StringIO()
        n = export_csv(reader, out, start=0, end=2e9)
        minutes = rows(out.getvalue())
        assert n == len(minutes) == 180 + 1  # pushes end 02:58 GMT, booked to 02:57
        first = minutes[0]
        assert first == {
            "start": "2025-03-29T23:58:00+00:00",
            "end": "2025-03-29T23:59:00+00:00",
            "utility": "electricity",
            "meter": E1,
            "amount": "6",
            "unit": "Wh",
            "energy_kwh": "0.006",
            "cost_minor": "1.470",
        }
        # 01:00 GMT is 02:00 BST: local times jump, the minutes do not
        assert [m["start"] for m in minutes if m["meter"] == E1][61:63] == [
            "2025-03-30T00:59:00+00:00",
            "2025-03-30T02:00:00+01:00",
        ]
        gas = [m for m in minutes if m["utility"] == "gas"]
        assert gas == [
            {
                "start": "2025-03-30T00:29:00+00:00",
                "end": "2025-03-30T00:30:00+00:00",
                "utility": "gas",
                "meter": G1,
                "amount": "0.25",
                "unit": "m3",
                "energy_kwh": "2.8125",
                "cost_minor": "1.500",
            }
        ]
        out = io.StringIO()
        export_csv(reader, out, start=0, end=2e9, interval="day", utility=Utility.ELECTRICITY)
        days = rows(out.getvalue())
        assert [(d["start"], d["end"], d["amount"]) for d in days] == [
            ("2025-03-29T00:00:00+00:00", "2025-03-30T00:00:00+00:00", "12"),
            ("2025-03-30T00:00:00+00:00", "2025-03-31T00:00:00+01:00", "1068"),
        ]
        out = io.StringIO()
        export_csv(reader, out, start=0, end=2e9, interval="hour", utility=Utility.ELECTRICITY)
        assert [h["start"][11:] for h in rows(out.getvalue())] == [
            "23:00:00+00:00",
            "00:00:00+00:00",
            "02:00:00+01:00",
            "03:00:00+01:00",
        ]
        out = io.StringIO()
        export_csv(reader, out, start=0, end=2e9, interval="month")
        assert [(m["utility"], m["start"]) for m in rows(out.getvalue())] == [
            ("electricity", "2025-03-01T00:00:00+00:00"),
            ("gas", "2025-03-01T00:00:00+00:00"),
        ]
        out = io.StringIO()
        export_csv(reader, out, start=0, end=2e9, readings=True, utility=Utility.GAS)
        assert rows(out.getvalue()) == [
            {
                "time": "2025-03-30T00:30:00+00:00",
                "utility": "gas",
                "meter": G1,
                "quantity": "volume_m3",
                "value": "1234.567",
                "raw": "1234567",
                "scaler": "-3",
            }
        ]


def test_cli_export_dates_are_local_and_inclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = export_store(tmp_path)
    assert main(["export", "--csv", "--data-dir", str(data), "--to", "2025-03-29"]) == 0
    got = rows(capsys.readouterr().out)
    assert len(got) == 2 and got[-1]["start"] == "2025-03-29T23:59:00+00:00"
    out = tmp_path / "march30.csv"
    args = ["export", "--data-dir", str(data), "--from", "2025-03-30", "--to", "2025-03-30"]
    assert main([*args, "--utility", "gas", "--out", str(out)]) == 0
    assert "wrote 1 rows" in capsys.readouterr().err
    assert [r["utility"] for r in rows(out.read_text())] == ["gas"]
    args = ["export", "--data-dir", str(data), "--from", "2025-03-30T02:30", "--interval", "hour"]
    assert main(args) == 0
    got = rows(capsys.readouterr().out)
    assert [r["start"][11:16] for r in got] == ["03:00"]  # whole hours starting in the span
    assert main(["export", "--data-dir", str(data), "--from", "30/03/2025"]) == 1
    assert "not a date" in capsys.readouterr().err
    assert main(["export", "--data-dir", str(tmp_path / "empty")]) == 1
    assert "no history" in capsys.readouterr().err
