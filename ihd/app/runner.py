"""Compose the layers into a running display: the demo and the configured run.

This is the only module that knows every layer. It builds them bottom-up, hands them to a
``Pipeline`` and then runs either the Qt UI or the headless printer until told to stop.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ihd import config as config_mod
from ihd import logs, paths
from ihd.app.ambient import lights
from ihd.app.control import ControlServer, control_handlers
from ihd.app.ingest import Ingest
from ihd.app.live import Snapshot
from ihd.app.pairing import (
    FRAME_COUNTER_KEY,
    PairingService,
    PairingStatus,
    dlms_keys,
    meter_devices,
)
from ihd.app.pipeline import Pipeline
from ihd.app.radios import build_radio
from ihd.app.seed import seed_history
from ihd.clock import Clock, HouseholdClock, ScaledClock
from ihd.diag import Diagnostics
from ihd.meter.reading import Utility
from ihd.radio.contract import Radio
from ihd.sim.world import PAN_ID, SimWorld, demo_world
from ihd.smwap.keys import KeyFile, PairedKeys
from ihd.smwap.receiver import Receiver
from ihd.store import Batch, Store, StoreReader
from ihd.tariff import Tariff, tariffs_from_config

log = logging.getLogger("ihd")


def run_demo(args: argparse.Namespace) -> int:
    cfg = config_mod.load(args.config) if args.config else config_mod.Config()
    start = time.time()
    data_dir = args.data_dir
    if args.start:
        start = _parse_start(args.start, cfg.timezone)
        if data_dir is None:  # another day's history must not mix with the usual demo's
            data_dir = Path(tempfile.mkdtemp(prefix="ihd-demo-"))
    p = paths.resolve(demo=True, config_file=args.config, data_dir=data_dir)
    if args.fresh and p.data_dir.exists():
        shutil.rmtree(p.data_dir)
    p.ensure()
    _file_logging(p, args.verbose)
    if not args.start:
        start = max(start, _last_reading_time(p.database))
    clock = ScaledClock(start, args.speed)
    keyfile = KeyFile(p.keys_file)
    if args.unpaired:
        keyfile.save(PairedKeys())  # forget every meter; history stays
    paired = keyfile.load()
    world = demo_world(
        seed=args.seed,
        start=start,
        fcs_len=args.fcs,
        loss=args.loss,
        corruption=args.corruption,
        tz=cfg.timezone,
        gas_cv_mj_m3=cfg["tariff.gas.calorific_value_mj_m3"],
        epoch=_sim_epoch(p.database, start - (args.history_days + 1) * 86400),
        joined=[m.eui64_text for m in paired],  # the meters remember the display
    )
    diag = Diagnostics()
    radio = build_radio(cfg, clock=clock, diag=diag, kind=args.radio, world=world).radio
    codes = world.install_codes()
    if args.unpaired:
        print("ihd demo: starting unpaired. Pair with the simulated meters with:", file=sys.stderr)
        for eui, code in codes.items():
            print(f"  ihd pair --demo --install-code '{code}'   # {eui}", file=sys.stderr)
        codes = {}
    return _run(
        args,
        cfg,
        p,
        clock,
        radio,
        keyfile,
        world.display_eui64,
        diag,
        seed_world=world,
        history_days=args.history_days,
        auto_pair={eui: c for eui, c in codes.items() if paired.get(int(eui, 16)) is None},
    )


SIM_EPOCH_KEY = "sim.epoch"
DISPLAY_EUI_KEY = "display.eui64"


def new_display_eui64() -> str:
    """A random EUI-64 with the locally administered bit set (and unicast): radios such as
    the AT86RF215 have none of their own, and the display keeps this one forever."""
    octets = bytearray(secrets.token_bytes(8))
    octets[0] = (octets[0] & 0xFC) | 0x02
    return octets.hex().upper()


def _sim_epoch(db: Path, default: float) -> dt.date:
    """The simulated meters' register epoch: kept in the store from the first start, so the
    registers continue where they left off (and the first read stays cheap)."""
    if db.is_file():
        with StoreReader(db) as reader:
            stored = reader.get_state(SIM_EPOCH_KEY)
        if stored:
            return dt.date.fromisoformat(stored)
    return dt.datetime.fromtimestamp(default, dt.UTC).date()


def _last_reading_time(db: Path) -> float:
    """Where the demo's simulated time got to. A demo run faster than real time ends in
    the future; the next one continues from there, so meter clocks and frame counters
    never go back (a real meter's never do)."""
    if not db.is_file():
        return 0.0
    with StoreReader(db) as reader:
        span = reader.span()
    return span[1] + 1.0 if span else 0.0


def _parse_start(text: str, tz: str) -> float:
    import zoneinfo

    try:
        local = dt.datetime.fromisoformat(text)
    except ValueError:
        raise config_mod.ConfigError(
            f"--start: expected a local time like 2026-11-25T18:30, got {text!r}"
        ) from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=zoneinfo.ZoneInfo(tz))
    return local.timestamp()


def run_configured(args: argparse.Namespace) -> int:
    cfg_path = args.config or paths.default_config_file()
    cfg = config_mod.load(cfg_path)
    p = paths.resolve(demo=False, config_file=cfg_path, data_dir=args.data_dir)
    p.ensure()
    _file_logging(p, args.verbose)
    clock = HouseholdClock(cfg["household.clock"], floor=_last_reading_time(p.database))
    keyfile = KeyFile(p.keys_file)
    diag = Diagnostics()
    built = build_radio(cfg, clock=clock, diag=diag, joined=[m.eui64_text for m in keyfile.load()])
    if built.world is not None:  # its meters pair like real ones, with these codes
        for eui, code in built.world.install_codes().items():
            log.info("simulated meter %s has install code %s", eui, code)
    display = built.display_eui64 or (built.world.display_eui64 if built.world else None)
    return _run(args, cfg, p, clock, built.radio, keyfile, display, diag)


def _file_logging(p: paths.Paths, verbose: bool) -> None:
    logs.setup(level=logging.DEBUG if verbose else logging.INFO, log_dir=p.log_dir)


def build_pipeline(
    *,
    cfg: config_mod.Config,
    db_path: Path,
    clock: Clock,
    radio: Radio,
    keyfile: KeyFile,
    display_eui64: str | None,
    diag: Diagnostics,
    diag_path: Path | None = None,
    seed_world: SimWorld | None = None,
    history_days: int = 0,
) -> Pipeline:
    """Every layer, wired; ``keyfile`` holds the paired meters (KeyFileError if unusable)."""
    tariffs: dict[Utility, Tariff] = tariffs_from_config(cfg)
    paired = keyfile.load()
    store = Store(
        db_path,
        diag=diag,
        commit_interval_s=cfg["store.commit_interval_s"],
        tz=cfg.timezone,
        retention_months=cfg["store.retention_months"],
    )
    if seed_world is not None:
        epoch = seed_world.household.epoch_date.isoformat()
        store.write_now(Batch(state={SIM_EPOCH_KEY: epoch}))
    ingest = Ingest(
        meters=meter_devices(paired),
        tariffs=tariffs,
        tz=cfg.timezone,
        diag=diag,
        gas_cv_mj_m3=cfg["tariff.gas.calorific_value_mj_m3"],
        receiver=Receiver(keys=paired.key_table()),
        dlms_keys=dlms_keys(paired),
    )
    diag.set("pairing.meters", len(paired))
    now = clock.now()
    with store.reader() as reader:
        ingest.resume(reader, now)
        span = reader.span()
        counter = int(reader.get_state(FRAME_COUNTER_KEY) or 0)
        if display_eui64 is None:
            display_eui64 = reader.get_state(DISPLAY_EUI_KEY)
    if display_eui64 is None:  # first start on a real radio: our own, kept for good
        display_eui64 = new_display_eui64()
        store.write_now(Batch(state={DISPLAY_EUI_KEY: display_eui64}))
    diag.set("radio.display_eui64", display_eui64)
    pan = next((m.pan_id for m in paired), PAN_ID if seed_world is not None else None)
    radio.set_addresses(eui64=display_eui64, pan_id=pan, short=None)
    turn = threading.Lock()  # the ingest's: frames, midnight roll-over, pairing commands
    pairing = PairingService(
        radio=radio,
        ingest_turn=turn,
        pan_id=pan,
        clock=clock,
        keyfile=keyfile,
        ingest=ingest,
        display_eui=int(display_eui64, 16),
        diag=diag,
        fcs_len=cfg["radio.fcs_len"],
        frame_counter=counter,
        save_counter=lambda c: store.submit(Batch(state={FRAME_COUNTER_KEY: str(c)})),
    )
    ingest.on_frame = pairing.on_frame
    ingest.receiver.link_frame = pairing.is_link_frame
    if seed_world is not None and history_days > 0:
        since = max(span[1], now - history_days * 86400) if span else now - history_days * 86400
        if since < now - 60:
            t0 = time.monotonic()
            n = seed_history(seed_world, store, ingest, start=since, end=now)
            log.info(
                "seeded %d demo readings (%.1f days) in %.1f s",
                n,
                (now - since) / 86400,
                time.monotonic() - t0,
            )

    def ambient(snap: Snapshot) -> dict[Utility, str]:
        with store.reader() as reader:
            found = lights(snap.today, clock.now(), cfg.timezone, reader, cfg.tariffs)
        return {u: f"{light}:{basis}" for u, (light, basis) in found.items()}

    return Pipeline(
        ambient=ambient,
        radio=radio,
        ingest=ingest,
        store=store,
        diag=diag,
        clock=clock,
        diag_path=diag_path,
        pairing=pairing,
        turn=turn,
    )


def _run(
    args: argparse.Namespace,
    cfg: config_mod.Config,
    p: paths.Paths,
    clock: Clock,
    radio: Radio,
    keyfile: KeyFile,
    display_eui64: str | None,
    diag: Diagnostics,
    *,
    seed_world: SimWorld | None = None,
    history_days: int = 0,
    auto_pair: dict[str, str] | None = None,
) -> int:
    from ihd.ui.app import has_display

    diag.set("app.mode", args.command)
    diag.set("app.data_dir", str(p.data_dir))
    pipeline = build_pipeline(
        cfg=cfg,
        db_path=p.database,
        clock=clock,
        radio=radio,
        keyfile=keyfile,
        display_eui64=display_eui64,
        diag=diag,
        diag_path=p.diag_snapshot,
        seed_world=seed_world,
        history_days=history_days,
    )
    if args.screenshot is not None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        if args.run_for is None:
            args.run_for = 3.0
    headless = args.headless or not has_display()
    if headless and not args.headless:
        print(
            "ihd: no display found (DISPLAY/WAYLAND_DISPLAY unset): running headless, "
            "one line per reading. Use --screenshot PNG to render the UI offscreen.",
            file=sys.stderr,
        )
    pairing = pipeline.pairing
    assert pairing is not None
    control = ControlServer(p.control_socket, control_handlers(pairing))
    try:
        control.start()
    except OSError as e:  # pairing from the touch screen still works
        diag.count("control.errors")
        log.warning("no control socket at %s: %s", p.control_socket, e)
    if auto_pair:
        _auto_pair(pairing, auto_pair)
    try:
        if headless:
            return _run_headless(pipeline, cfg, args.run_for)
        return _run_gui(pipeline, cfg, clock, args.run_for, args.screenshot)
    finally:
        control.stop()


def _auto_pair(pairing: PairingService, codes: dict[str, str]) -> None:
    """The demo pairs with its simulated meters, one after the other, for real."""
    pending = list(codes.items())

    def next_meter(status: PairingStatus | None = None) -> None:
        if status is not None and not status.done:
            return
        if status is not None and status.state == "failed":
            log.warning("demo: pairing failed: %s", status.message)
        if not pending:
            pairing.listeners.remove(next_meter)
            return
        eui, code = pending.pop(0)
        threading.Thread(
            target=pairing.start,
            args=(code,),
            kwargs={"meter_eui": int(eui, 16)},
            name="ihd-autopair",
            daemon=True,
        ).start()

    pairing.listeners.append(next_meter)
    next_meter()


def _run_gui(
    pipeline: Pipeline,
    cfg: config_mod.Config,
    clock: Clock,
    run_for: float | None,
    screenshot: Path | None,
) -> int:
    from PySide6.QtCore import QTimer

    from ihd.tariff.money import currency_for
    from ihd.ui.app import Gui

    gui = Gui(
        clock=clock,
        currency=currency_for(cfg["household.currency"]),
        tz=cfg.timezone,
        pairing=pipeline.pairing,
        diag=pipeline.diag,
    )
    pipeline.add_listener(gui.listener())
    signal.signal(signal.SIGINT, lambda *_: gui.app.quit())
    signal.signal(signal.SIGTERM, lambda *_: gui.app.quit())
    wake = QTimer()  # lets Python run its signal handlers while Qt waits
    wake.start(250)
    wake.timeout.connect(lambda: None)
    pipeline.start()
    try:
        return gui.run(run_for=run_for, screenshot=screenshot)
    finally:
        pipeline.stop()
        gui.close()


def _run_headless(pipeline: Pipeline, cfg: config_mod.Config, run_for: float | None) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pipeline.add_listener(reading_printer(cfg.timezone))
    pipeline.start()
    try:
        stop.wait(run_for)
    finally:
        pipeline.stop()
    return 0


def reading_printer(tz: str, out: Callable[[str], None] = print) -> Callable[[Snapshot], None]:
    """One line per reading: local time, utility, meter, quantity, value and unit."""
    import zoneinfo

    zone = zoneinfo.ZoneInfo(tz)

    def listener(snap: Snapshot) -> None:
        for r in snap.readings:
            when = dt.datetime.fromtimestamp(r.timestamp, zone).strftime("%Y-%m-%d %H:%M:%S")
            out(f"{when}  {r.utility:<11}  {r.meter}  {r.quantity:<18} {r.value} {r.unit}")
        sys.stdout.flush()

    return listener
