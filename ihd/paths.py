"""Where ihd keeps things, per the platform's conventions (XDG on Linux, via platformdirs).

``ihd run`` and ``ihd demo`` never share a data directory: the demo's seeded history must
not leak into a real household's bills. Every path can be overridden from the command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP = "ihd"


@dataclass(frozen=True, slots=True)
class Paths:
    config_file: Path
    data_dir: Path
    log_dir: Path
    runtime_dir: Path
    keys_file: Path  # the paired meters' keys (mode 0600), see ihd.smwap.keys

    @property
    def control_socket(self) -> Path:
        """Where ``ihd pair``/``unpair`` reach the running display."""
        return self.runtime_dir / "control.sock"

    @property
    def database(self) -> Path:
        return self.data_dir / "history.sqlite"

    @property
    def diag_snapshot(self) -> Path:
        return self.runtime_dir / "diag.json"

    def ensure(self) -> None:
        for d in (self.data_dir, self.log_dir, self.runtime_dir):
            d.mkdir(parents=True, exist_ok=True)


def default_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


def _runtime_dir(name: str, data_dir: Path) -> Path:
    """A tmpfs directory for the diagnostics snapshot, so it never wears the SD card."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and Path(base).is_dir():
        return Path(base) / name
    return data_dir / "run"


def resolve(*, demo: bool, config_file: Path | None = None, data_dir: Path | None = None) -> Paths:
    name = f"{APP}-demo" if demo else APP
    data = data_dir or Path(platformdirs.user_data_dir(name))
    # Keys are configuration, not data (the history is copied for support, keys never are);
    # the demo's keys are the simulator's and stay with its data.
    keys_dir = data if demo or data_dir else Path(platformdirs.user_config_dir(APP))
    return Paths(
        config_file=config_file or default_config_file(),
        data_dir=data,
        log_dir=Path(platformdirs.user_log_dir(name)) if data_dir is None else data / "log",
        runtime_dir=_runtime_dir(name, data) if data_dir is None else data / "run",
        keys_file=keys_dir / "keys.json",
    )
