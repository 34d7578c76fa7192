"""The key file: round trip, permissions, atomic saves, and errors that never show a key."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path
from typing import Any

import pytest

from ihd.smwap.keys import KeyFile, KeyFileError, PairedKeys, PairedMeter
from ihd.smwap.mac import AuxSecurityHeader
from ihd.smwap.security import Key

ANNEX_KEY_HEX = "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"  # the IEEE Annex C vector key
SMWAP_KEY_HEX = "00112233445566778899aabbccddeeff"  # the SMWAP-like vectors' key
DLMS_KEY_HEX = "000102030405060708090a0b0c0d0e0f"
SECRETS = [h for k in (ANNEX_KEY_HEX, SMWAP_KEY_HEX, DLMS_KEY_HEX) for h in (k, k.upper())]

ELEC = PairedMeter(
    eui64=0xACDE480000000001,
    utility="electricity",
    label="House meter",
    pan_id=0x1D1D,
    network_key=Key.from_hex(ANNEX_KEY_HEX),
    key_index=1,
    dlms_system_title=bytes.fromhex("4D4D4D0000BC614E"),
    dlms_encryption_key=Key.from_hex(DLMS_KEY_HEX),
    dlms_authentication_key=Key.from_hex(SMWAP_KEY_HEX),
)
GAS = PairedMeter(
    eui64=0x0011223344556677,
    utility="gas",
    label="Gäs",
    pan_id=0x1D1D,
    network_key=Key.from_hex(SMWAP_KEY_HEX),
    key_index=None,
)


def _no_secrets(text: str) -> None:
    for h in SECRETS:
        assert h not in text


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    path.write_text(text)
    os.chmod(path, mode)


def _doc(**meter: Any) -> str:
    base = {
        "eui64": "ACDE480000000001",
        "utility": "electricity",
        "label": "x",
        "pan_id": 1,
        "network_key": ANNEX_KEY_HEX,
        "key_index": 1,
    }
    base.update(meter)
    return json.dumps({"format": "ihd-keys", "version": 1, "meters": [base]})


def test_round_trip_mode_0600_and_no_temp_files(tmp_path: Path) -> None:
    kf = KeyFile(tmp_path / "conf" / "keys.json")
    assert kf.load() == PairedKeys()  # nothing paired yet
    keys = PairedKeys((ELEC, GAS))
    kf.save(keys)
    assert stat.S_IMODE(os.stat(kf.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(kf.path.parent).st_mode) == 0o700
    assert os.listdir(kf.path.parent) == ["keys.json"]
    assert kf.load() == keys
    loaded = kf.load().get(ELEC.eui64)
    assert loaded is not None and loaded.dlms_encryption_key == Key.from_hex(DLMS_KEY_HEX)
    # Saving again replaces the file (still 0600, still no leftovers), even with a loose umask.
    old = os.umask(0o000)
    try:
        kf.save(keys.without(GAS.eui64))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(kf.path).st_mode) == 0o600
    assert os.listdir(kf.path.parent) == ["keys.json"]
    assert kf.load() == PairedKeys((ELEC,))


def test_add_and_remove(tmp_path: Path) -> None:
    kf = KeyFile(tmp_path / "keys.json")
    kf.add(ELEC)
    kf.add(GAS)
    relabelled = PairedMeter(ELEC.eui64, "electricity", "Flat", 1, Key(bytes(16)))
    assert [m.label for m in kf.add(relabelled)] == ["Flat", "Gäs"]  # replaced in place
    assert kf.remove(ELEC.eui64) is True
    assert kf.remove(ELEC.eui64) is False
    assert [m.eui64 for m in kf.load()] == [GAS.eui64]


def test_key_table_binds_each_network_key_to_its_meter() -> None:
    table = PairedKeys((ELEC, GAS)).key_table()
    assert table.lookup(AuxSecurityHeader(5, 1, 1), ELEC.eui64) == ELEC.network_key
    assert table.lookup(AuxSecurityHeader(5, 1, 1), GAS.eui64) is None
    assert table.lookup(AuxSecurityHeader(5, 1), GAS.eui64) == GAS.network_key
    mode2 = PairedMeter(1, "gas", "g", 1, Key(bytes(16)), 3, b"\x01\x02\x03\x04")
    t2 = PairedKeys((mode2,)).key_table()
    assert t2.lookup(AuxSecurityHeader(5, 1, 3, b"\x01\x02\x03\x04"), 1) == Key(bytes(16))


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o601])
def test_loose_permissions_are_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "keys.json"
    KeyFile(path).save(PairedKeys((ELEC,)))
    os.chmod(path, mode)
    with pytest.raises(KeyFileError) as e:
        KeyFile(path).load()
    msg = str(e.value)
    assert str(path) in msg and f"{mode:04o}" in msg and f"chmod 600 {path}" in msg
    assert e.value.path == path
    _no_secrets(msg)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{" + f'"network_key": "{ANNEX_KEY_HEX}"', "not valid JSON"),
        (f'{{"k": "{SMWAP_KEY_HEX}"}} trailing', "not valid JSON"),
        ("[]", "expected a JSON object"),
        (json.dumps({"format": "other", "version": 1}), "not an ihd key file"),
        (json.dumps({"format": "ihd-keys", "version": 2}), "unsupported version"),
        (_doc(network_key=ANNEX_KEY_HEX[:-2]), "meters[0].network_key: expected 16 octets"),
        (_doc(network_key=ANNEX_KEY_HEX[:-1] + "x"), "meters[0].network_key: not hex"),
        (_doc(network_key=1), "meters[0].network_key: expected a hex string"),
        (_doc(dlms_encryption_key=SMWAP_KEY_HEX + "00"), "dlms_encryption_key: expected 16"),
        (_doc(key_index=True), "meters[0].key_index"),
        (_doc(pan_id=70000), "meters[0].pan_id"),
        (_doc(eui64="ACDE48"), "meters[0].eui64"),
        (_doc(dlms_system_title="00"), "dlms_system_title"),
        (_doc(key_source="0102", key_index=1), "key_source"),
        (_doc(**{ANNEX_KEY_HEX: 1}), "unknown field(s) (name not shown)"),
        (_doc(**{"abcdefabcdefabcdefabcdefabcdefab": 1}), "unknown field(s) (name not shown)"),
        (_doc(colour="red"), "unknown field(s) colour"),
        (json.dumps({"format": "ihd-keys", "version": 1, "meters": [{}]}), "missing field"),
        (
            json.dumps(
                {"format": "ihd-keys", "version": 1, "meters": json.loads(_doc())["meters"] * 2}
            ),
            "listed twice",
        ),
    ],
)
def test_corrupt_files_name_the_problem_not_the_content(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "keys.json"
    _write(path, text)
    with pytest.raises(KeyFileError) as e:
        KeyFile(path).load()
    msg = str(e.value)
    assert reason in msg and str(path) in msg
    _no_secrets(msg)
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_non_utf8_and_non_regular_files(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_bytes(b"\xff\xfe" + bytes.fromhex(ANNEX_KEY_HEX))
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="not UTF-8"):
        KeyFile(path).load()
    d = tmp_path / "dir"
    d.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        KeyFile(d).load()


def test_failed_save_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    kf = KeyFile(path)
    kf.save(PairedKeys((ELEC,)))
    (tmp_path / "keys.json.blocker").mkdir()
    blocked = KeyFile(tmp_path / "keys.json.blocker")  # rename over a directory fails
    with pytest.raises(KeyFileError, match="cannot be written"):
        blocked.save(PairedKeys((GAS,)))
    assert sorted(os.listdir(tmp_path)) == ["keys.json", "keys.json.blocker"]
    assert kf.load() == PairedKeys((ELEC,))


def test_reprs_and_errors_never_show_keys(tmp_path: Path) -> None:
    keys = PairedKeys((ELEC, GAS))
    texts = [
        repr(ELEC),
        str(ELEC),
        repr(GAS),
        repr(keys),
        str(keys),
        repr(keys.key_table()),
        repr(KeyFile(tmp_path / "k.json")),
    ]
    for t in texts:
        _no_secrets(t)
    assert repr(ELEC) == (
        "PairedMeter(eui64='ACDE480000000001', utility='electricity', label='House meter', "
        "pan_id=0x1D1D, key_index=1, dlms_keys='enc+auth')"
    )
    err = KeyFileError(tmp_path / "k.json", "is broken")
    again = pickle.loads(pickle.dumps(err))
    assert (again.path, again.reason) == (err.path, err.reason)
    with pytest.raises(TypeError):
        pickle.dumps(ELEC)  # holds Keys, which refuse pickling


def test_paired_meter_checks() -> None:
    with pytest.raises(ValueError):
        PairedMeter(1 << 64, "e", "l", 1, Key(bytes(16)))
    with pytest.raises(ValueError):
        PairedMeter(1, "e", "l", 1, Key(bytes(16)), None, b"\x01\x02\x03\x04")
    with pytest.raises(TypeError):
        PairedMeter(1, "e", "l", 1, bytes(16))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="twice"):
        PairedKeys((GAS, GAS))
