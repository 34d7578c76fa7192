"""ihd.tools.dlms_decode: ``ihd decode --dlms HEX`` prints one reading per line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ihd.tools import dlms_decode

FRAMES = {
    f["name"]: f
    for f in json.loads((Path(__file__).parent / "data" / "dlms" / "frames.json").read_text())[
        "frames"
    ]
}
OMNI = FRAMES["kamstrup_omnipower_ciphered"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    status = dlms_decode.main(list(argv))
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


def test_add_arguments_gives_the_four_options() -> None:
    p = argparse.ArgumentParser()
    dlms_decode.add_arguments(p)
    args = p.parse_args(
        ["--dlms", "0f", "--dlms-key", "k", "--dlms-auth-key", "a", "--system-title", "t"]
    )
    assert (args.dlms, args.dlms_key, args.dlms_auth_key, args.system_title) == (
        "0f",
        "k",
        "a",
        "t",
    )


def test_plain_hdlc_push(capsys: pytest.CaptureFixture[str]) -> None:
    # Kaifa list 3 (amshan): 79591144 Wh import, 219.3 V on L1, 14.571 A on L1.
    status, out, err = run(capsys, "--dlms", FRAMES["kaifa_no_list3"]["hex"])
    assert status == 0
    assert "1-0:1.8.0.255 79591144 Wh" in out
    assert "1-0:32.7.0.255 219.3 V" in out
    assert "1-0:31.7.0.255 14.571 A" in out
    assert '0-0:96.1.7.255 "MA304H3E"' in out and '- "KFM_001"' in out
    assert len([line for line in out if not line.endswith('"')]) == 14
    assert "layout kaifa_list3" in err and "framing llc" in err


def test_spaced_hex_and_colons(capsys: pytest.CaptureFixture[str]) -> None:
    h = FRAMES["kaifa_kfm001_hdlc_list1"]["hex"]
    spaced = " ".join(h[i : i + 2] for i in range(0, len(h), 2))
    status, out, _ = run(capsys, "--dlms", spaced.replace(" ", ":", 3))
    assert status == 0 and out == ["1-0:1.7.0.255 1320 W"]


def test_ciphered_push_with_keys(capsys: pytest.CaptureFixture[str]) -> None:
    k = OMNI["keys"]
    status, out, err = run(
        capsys,
        "--dlms",
        OMNI["hex"],
        "--dlms-key",
        k["encryption_key"],
        "--dlms-auth-key",
        k["authentication_key"],
        "--system-title",
        "4B414D4501349083",
    )
    assert status == 0
    assert "1-1:1.8.0.255 63074980 Wh" in out  # 6307498 x 10 Wh
    assert "1-1:31.7.0.255 0.57 A" in out
    assert "security control 0x30, authenticated" in err
    for secret in (k["encryption_key"], k["authentication_key"]):
        assert secret.lower() not in (err + "".join(out)).lower()


def test_failures_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    k = OMNI["keys"]
    status, out, err = run(capsys, "--dlms", OMNI["hex"])
    assert status == 1 and out == [] and "no DLMS key" in err
    wrong_ak = "00" * 16
    status, _, err = run(
        capsys,
        "--dlms",
        OMNI["hex"],
        "--dlms-key",
        k["encryption_key"],
        "--dlms-auth-key",
        wrong_ak,
    )
    assert status == 4 and "does not verify" in err
    status, _, err = run(capsys, "--dlms", "zz")
    assert status == 1 and "not hex" in err
    secret = "0123456789abcdef0123456789abcdeX"
    status, _, err = run(capsys, "--dlms", OMNI["hex"], "--dlms-key", secret)
    assert status == 1 and "32 (or 64) hex digits" in err and secret not in err
    status, _, err = run(capsys, "--dlms", OMNI["hex"], "--system-title", "00")
    assert status == 1
    status, _, err = run(
        capsys,
        "--dlms",
        OMNI["hex"],
        "--dlms-key",
        k["encryption_key"],
        "--system-title",
        "0000000000000000",
    )
    assert status == 1 and "not the configured 0000000000000000" in err
    status, _, err = run(capsys, "--dlms", "0f0000000000020100")
    assert status == 1 and "ihd decode:" in err
