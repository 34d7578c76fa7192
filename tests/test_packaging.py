"""What we ship: the wheel carries the QML, the entry point and the right extras."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_the_qml_module_and_entry_point(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("ihd-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "ihd = ihd.cli:main" in z.read(entry_points).decode()
    qml = {p.relative_to(ROOT).as_posix() for p in (ROOT / "qml").rglob("*") if p.is_file()}
    assert qml, "the repo has QML files"
    assert {"ihd/" + q for q in qml} <= names
    assert "ihd/qml/Ihd/qmldir" in names
    assert "ihd/ui/backend.py" in names


def test_hardware_packages_are_an_extra_and_never_imported_by_the_demo_path() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = " ".join(meta["dependencies"]).lower()
    assert "spidev" not in deps and "gpiod" not in deps
    pi = " ".join(meta["optional-dependencies"]["pi"])
    assert "spidev" in pi and "gpiod" in pi and "sys_platform == 'linux'" in pi
    assert "pyqtgraph" in deps
    code = (
        "import sys, ihd.app.runner, ihd.ui.backend; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('spidev', 'gpiod')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert out == "[]"


def test_pyside6_pin_avoids_the_612_refcount_bug() -> None:
    import PySide6

    version = tuple(int(x) for x in PySide6.__version__.split(".")[:2])
    assert (6, 8) <= version < (6, 12)
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (pin,) = [d for d in meta["dependencies"] if d.startswith("PySide6-Essentials")]
    assert "<6.12" in pin
