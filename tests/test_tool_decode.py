"""``ihd decode``: one frame explained, its FCS and MIC checked, its plaintext shown.

The inputs are independent of our stack: the shared SMWAP vectors (tests/data, IEEE Annex C
and frames computed with ``cryptography``), with FCS octets computed here by ``binascii``
(CRC-32) and a bit-loop CRC-16/KERMIT that is itself checked against the vectors' values.
A few regression cases (a multipurpose frame, an FEC-coded PPDU, a short source address)
are built with our own builders: they check that the tool copes, not that the octets are
right. Most tests call the tool in-process; some run the installed ``ihd`` for real.
"""

from __future__ import annotations

import binascii
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ihd import cli
from ihd.tools import decode

DATA = Path(__file__).parent / "data"
VECTORS = json.loads((DATA / "smwap_vectors.json").read_text())
CCM = VECTORS["ccm_star"]
BY_NAME = {v["name"]: v for v in CCM}
PPDUS = {v["name"]: v for v in VECTORS["ppdu"]}

_SCRIPT = Path(sys.executable).with_name("ihd")
IHD: list[str] = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "ihd.cli"]

# Where the MAC header ends in the MIC-only vectors (levels 1-3 send the payload in clear,
# so the vector's ``a`` is header + payload), counted from the frames by hand:
#   smwap_like_data_level1: FC 2 + seq 1 + dst PAN 2 + dst short 2 + src EUI-64 8 + aux 5
#   ieee_annexC_2_1_beacon_MIC64: FC 2 + seq 1 + src PAN 2 + src EUI-64 8 + aux 5
MIC_ONLY_HEADER_LEN = {"smwap_like_data_level1": 20, "ieee_annexC_2_1_beacon_MIC64": 18}
# The 2006 MAC command of Annex C.2.3 keeps its Command ID (the last octet of ``a``) in clear.
CLEAR_COMMAND_ID = {"ieee_annexC_2_3_command_ENC_MIC64"}


def crc16_kermit(data: bytes) -> bytes:
    """The 802.15.4 16-bit FCS (CRC-16/KERMIT), bit by bit, as sent (little-endian)."""
    crc = 0
    for octet in data:
        crc ^= octet
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


def crc32(data: bytes) -> bytes:
    """The 802.15.4 32-bit FCS (the IEEE 802.3 CRC-32), as sent (little-endian)."""
    return binascii.crc32(data).to_bytes(4, "little")


def with_fcs(mpdu: bytes, fcs_len: int) -> bytes:
    return mpdu + (crc32(mpdu) if fcs_len == 4 else crc16_kermit(mpdu))


def expected_plaintext(v: dict[str, Any]) -> bytes:
    a, m = bytes.fromhex(v["a_data"]), bytes.fromhex(v["m_data"])
    if v["name"] in MIC_ONLY_HEADER_LEN:
        assert not m
        return a[MIC_ONLY_HEADER_LEN[v["name"]] :]
    return a[-1:] + m if v["name"] in CLEAR_COMMAND_ID else m


def run_decode(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``ihd decode ARGV`` in-process, through the real ``ihd`` argument parser."""
    args = cli.parser().parse_args(["decode", *argv])
    rc = decode.run(args)
    out, err = capsys.readouterr()
    return rc, out, err


def plaintext_line(out: str) -> str:
    found = re.findall(r"^plaintext: (\S+)$", out, re.M)
    assert len(found) == 1, out
    return found[0]


def assert_no_key(key_hex: str, *texts: str) -> None:
    for text in texts:
        flat = re.sub(r"[\s:]", "", text).lower()
        assert key_hex.lower() not in flat


def one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ihd decode: ")
    return lines[0]


def test_crc_helpers_match_the_vectors() -> None:
    for v in VECTORS["crc16"]:
        assert crc16_kermit(bytes.fromhex(v["data"])).hex() == v["fcs_octets"]
    for v in VECTORS["crc32"]:
        assert crc32(bytes.fromhex(v["data"])).hex() == v["fcs_octets"]


# --- the vectors: MIC and plaintext ----------------------------------------------------------


@pytest.mark.parametrize("fcs_len", [2, 4])
@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_vector_decrypts_to_its_plaintext(
    capsys: pytest.CaptureFixture[str], name: str, fcs_len: int
) -> None:
    v = BY_NAME[name]
    psdu = with_fcs(bytes.fromhex(v["secured_frame_no_fcs"]), fcs_len)
    rc, out, err = run_decode(capsys, psdu.hex(), "--key", v["key"], "--fcs", str(fcs_len))
    assert rc == decode.EXIT_OK == 0, err
    assert err == ""
    assert plaintext_line(out).lower() == expected_plaintext(v).hex()
    result = out.strip().splitlines()[-1]
    assert f"FCS ok ({fcs_len} octets" in result
    if v["security_level"] == 4:
        assert "no MIC (level 4)" in result  # ENC only: decrypted, nothing checked
    else:
        assert "MIC ok" in result
    assert f"source address: EUI-64 {v['src_ext_addr'].upper()}" in out
    assert f"frame counter: {v['frame_counter']}" in out
    assert_no_key(v["key"], out, err)


def test_without_key_the_mic_is_not_checked(capsys: pytest.CaptureFixture[str]) -> None:
    v = BY_NAME["smwap_like_data_level5"]
    rc, out, _ = run_decode(capsys, with_fcs(bytes.fromhex(v["secured_frame_no_fcs"]), 4).hex())
    assert rc == 0
    assert "plaintext:" not in out
    assert "MIC not checked (no --key)" in out
    assert "secured payload: encrypted" in out


@pytest.mark.parametrize("name", [n for n in sorted(BY_NAME) if BY_NAME[n]["security_level"] != 4])
def test_flipped_bit_in_secured_part_fails_the_mic(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """Every bit of the secured payload and MIC, flipped, with a right FCS: a MIC failure."""
    v = BY_NAME[name]
    mpdu = bytes.fromhex(v["secured_frame_no_fcs"])
    start = len(mpdu) - v["mic_len"] - len(bytes.fromhex(v["m_data"]))
    if v["security_level"] < 4:
        start = MIC_ONLY_HEADER_LEN[name]
    for bit in range(8 * start, 8 * len(mpdu)):
        bad = bytearray(mpdu)
        bad[bit // 8] ^= 1 << (bit % 8)
        rc, out, err = run_decode(capsys, with_fcs(bytes(bad), 4).hex(), "--key", v["key"])
        assert rc == decode.EXIT_MIC == 4, (bit, err)
        assert "MIC check failed" in one_line_error(err)
        assert "plaintext:" not in out
        assert_no_key(v["key"], out, err)


def test_flipped_bit_in_header_is_never_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    """A bit flipped in the MAC header (FCS right again) fails the MIC or the parse. Only a
    level changed to 4 (no MIC) or a cleared security-enabled bit gets through, and then
    the output says that nothing was checked."""
    v = BY_NAME["smwap_like_data_level5"]
    mpdu = bytes.fromhex(v["secured_frame_no_fcs"])
    header_len = len(bytes.fromhex(v["a_data"]))
    for bit in range(8 * header_len):
        bad = bytearray(mpdu)
        bad[bit // 8] ^= 1 << (bit % 8)
        rc, out, err = run_decode(capsys, with_fcs(bytes(bad), 4).hex(), "--key", v["key"])
        if rc == 0:  # nothing to check any more, and the output says so
            assert "no MIC (level 4)" in out or "the frame is not secured" in out, bit
        else:
            assert rc in (decode.EXIT_MIC, decode.EXIT_INPUT), (bit, err)
            one_line_error(err)
        assert_no_key(v["key"], out, err)


def test_wrong_key_fails_the_mic(capsys: pytest.CaptureFixture[str]) -> None:
    v = BY_NAME["smwap_like_data_level5"]
    wrong = "ff" * 16
    psdu = with_fcs(bytes.fromhex(v["secured_frame_no_fcs"]), 4)
    rc, out, err = run_decode(capsys, psdu.hex(), "--key", wrong)
    assert rc == decode.EXIT_MIC
    assert "wrong key, or the frame was changed" in one_line_error(err)
    assert "result: FAILED: MIC check failed" in out
    assert_no_key(wrong, out, err)


# --- FCS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fcs_len", [2, 4])
def test_bad_fcs_exits_with_the_fcs_status(
    capsys: pytest.CaptureFixture[str], fcs_len: int
) -> None:
    v = BY_NAME["smwap_like_data_level5"]
    psdu = bytearray(with_fcs(bytes.fromhex(v["secured_frame_no_fcs"]), fcs_len))
    psdu[10] ^= 0x04  # in the source address: the FCS no longer matches
    rc, out, err = run_decode(capsys, psdu.hex(), "--fcs", str(fcs_len), "--key", v["key"])
    assert rc == decode.EXIT_FCS == 3
    assert f"bad FCS ({fcs_len} octets" in one_line_error(err)
    assert "BAD" in out
    assert "note: also: MIC check failed" in out  # the later failure is a note
    assert_no_key(v["key"], out, err)


def test_bad_fcs_without_fcs_flag_checks_neither(capsys: pytest.CaptureFixture[str]) -> None:
    v = BY_NAME["smwap_like_data_level7"]
    psdu = bytearray(with_fcs(bytes.fromhex(v["secured_frame_no_fcs"]), 4))
    psdu[-1] ^= 0x80
    rc, out, err = run_decode(capsys, psdu.hex())
    assert rc == decode.EXIT_FCS
    assert "checks neither as 4 octets (CRC-32) nor as 2 (CRC-16)" in one_line_error(err)
    assert "FCS: checks neither" in out


@pytest.mark.parametrize(
    ("psdu_hex", "fcs_len"),
    [
        ("02006a" + VECTORS["crc16"][0]["fcs_octets"], 2),  # the IEEE Imm-Ack example
        ("02006a" + VECTORS["crc32"][1]["fcs_octets"], 4),
        (PPDUS["level5_frame_fcs2_dw1"]["mpdu_with_fcs"], 2),
        (PPDUS["level5_frame_fcs4_dw1"]["mpdu_with_fcs"], 4),
    ],
)
def test_psdu_without_fcs_flag_says_which_fcs_checks(
    capsys: pytest.CaptureFixture[str], psdu_hex: str, fcs_len: int
) -> None:
    other = 6 - fcs_len
    crc = {2: "CRC-16", 4: "CRC-32"}
    rc, out, err = run_decode(capsys, psdu_hex)
    assert rc == 0, err
    assert (
        f"note: FCS: {fcs_len} octets ({crc[fcs_len]}) checks; "
        f"{other} octets ({crc[other]}) does not"
    ) in out
    assert f"FCS ok ({fcs_len} octets, {crc[fcs_len]})" in out


def test_wrong_fcs_flag_is_a_bad_fcs(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run_decode(capsys, PPDUS["level5_frame_fcs4_dw1"]["mpdu_with_fcs"], "--fcs", "2")
    assert rc == decode.EXIT_FCS
    assert "bad FCS (2 octets, CRC-16)" in one_line_error(err)


def test_ack_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_decode(capsys, "02 00 6A E4 79")
    assert rc == 0
    assert "frame control: 0x0002, ack" in out
    assert "sequence number: 106" in out
    assert "FCS: 0x79E4 CRC-16, ok" in out


# --- PPDUs -----------------------------------------------------------------------------------


def ppdu_octets(v: dict[str, Any]) -> bytes:
    """SHR + PHR + the PSDU as sent (whitened), from the vector's parts."""
    return (
        b"\x55" * v["preamble_octets"]
        + bytes.fromhex(v["sfd"])
        + bytes.fromhex(v["phr_octets"])
        + bytes.fromhex(v["psdu_on_air_octets"])
    )


@pytest.mark.parametrize("name", sorted(PPDUS))
def test_ppdu_phr_gives_the_fcs_length(capsys: pytest.CaptureFixture[str], name: str) -> None:
    v = PPDUS[name]
    sec = BY_NAME["smwap_like_data_level5"]  # the frame inside these PPDUs
    assert v["mpdu_with_fcs"].startswith(sec["secured_frame_no_fcs"])
    fcs_len = v["fcs_len"]
    rc, out, err = run_decode(capsys, ppdu_octets(v).hex(), "--key", sec["key"])
    assert rc == 0, err
    psdu_len = len(bytes.fromhex(v["mpdu_with_fcs"]))
    assert f"PHR: {psdu_len}-octet PSDU, {fcs_len}-octet FCS, whitened" in out
    assert f"FCS type: {int(fcs_len == 2)} ({fcs_len}-octet" in out
    assert f"SFD: 0x{v['sfd'].upper()}" in out
    assert f"FCS ok ({fcs_len} octets" in out
    assert plaintext_line(out).lower() == sec["m_data"]
    assert "note: FCS:" not in out  # no guessing: the PHR said


def test_ppdu_ignores_a_contradicting_fcs_flag(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_decode(capsys, ppdu_octets(PPDUS["level5_frame_fcs2_dw1"]).hex(), "--fcs", "4")
    assert rc == 0
    assert "--fcs 4 ignored: the PHR says 2" in out


def test_ppdu_with_bad_fcs(capsys: pytest.CaptureFixture[str]) -> None:
    ppdu = bytearray(ppdu_octets(PPDUS["level5_frame_fcs4_dw1"]))
    ppdu[-1] ^= 0x01  # whitening is an XOR: the de-whitened FCS changes by the same bit
    rc, _, err = run_decode(capsys, ppdu.hex())
    assert rc == decode.EXIT_FCS
    assert "bad FCS (4 octets, CRC-32, as the PHR says)" in one_line_error(err)


def test_truncated_ppdu_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    ppdu = ppdu_octets(PPDUS["level5_frame_fcs4_dw1"])[:-5]
    rc, _, err = run_decode(capsys, ppdu.hex())
    assert rc == decode.EXIT_INPUT
    assert "not a PPDU: truncated PSDU" in one_line_error(err)


def test_fec_coded_ppdu(capsys: pytest.CaptureFixture[str]) -> None:
    from ihd.smwap.phy import build_ppdu

    sec = BY_NAME["smwap_like_data_level5"]
    psdu = bytes.fromhex(PPDUS["level5_frame_fcs4_dw1"]["mpdu_with_fcs"])
    ppdu = build_ppdu(psdu, fcs_len=4, fec="rsc")
    rc, out, err = run_decode(capsys, ppdu.hex(), "--key", sec["key"])
    assert rc == 0, err
    assert "PHR + PSDU, FEC-coded: RSC rate 1/2 K=4, interleaved" in out
    assert f"PHR (decoded): {len(psdu)}-octet PSDU, 4-octet FCS" in out
    assert plaintext_line(out).lower() == sec["m_data"]


# --- other frames ----------------------------------------------------------------------------


def test_multipurpose_frame(capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: a multipurpose frame used to raise ValueError (no general frame control)."""
    from ihd.smwap.mac import Address, AuxSecurityHeader, MacFrame
    from ihd.smwap.security import Key, secure

    v = BY_NAME["smwap_like_data_level5"]
    src = Address.from_eui64(v["src_ext_addr"])
    frame = MacFrame.multipurpose(
        src=src,
        dst=Address.short(2),
        pan=0x1234,
        seq=9,
        payload=b"hello",
        aux=AuxSecurityHeader(5, frame_counter=7, key_index=1),
    )
    mpdu = secure(frame, Key.from_hex(v["key"]), src_ext=src.value)
    rc, out, err = run_decode(capsys, with_fcs(mpdu, 2).hex(), "--key", v["key"])
    assert rc == 0, err
    assert "multipurpose (long form)" in out
    assert "PAN ID: 0x1234" in out
    assert plaintext_line(out) == b"hello".hex().upper()
    short = MacFrame.multipurpose(src=None, dst=Address.short(2), pan=None, seq=1, payload=b"x")
    rc, out, _ = run_decode(capsys, with_fcs(short.to_bytes(), 4).hex())
    assert rc == 0
    assert "multipurpose (short form)" in out


def test_short_source_needs_src(capsys: pytest.CaptureFixture[str]) -> None:
    from ihd.smwap.mac import Address, AuxSecurityHeader, MacFrame
    from ihd.smwap.security import Key, secure

    v = BY_NAME["smwap_like_data_level5"]
    eui = int(v["src_ext_addr"], 16)
    frame = MacFrame.data(
        src=Address.short(0x1234),
        dst=Address.short(1),
        dst_pan=0x1D1D,
        seq=3,
        payload=b"\x01\x02",
        aux=AuxSecurityHeader(5, frame_counter=1, key_index=1),
    )
    psdu = with_fcs(secure(frame, Key.from_hex(v["key"]), src_ext=eui), 4).hex()
    rc, _, err = run_decode(capsys, psdu, "--key", v["key"])
    assert rc == decode.EXIT_INPUT
    assert "give the sender's EUI-64 with --src" in one_line_error(err)
    rc, out, err = run_decode(capsys, psdu, "--key", v["key"], "--src", v["src_ext_addr"])
    assert rc == 0, err
    assert plaintext_line(out) == "0102"


def test_unsecured_dlms_push_is_decoded(capsys: pytest.CaptureFixture[str]) -> None:
    from ihd.meter.dlms import build_push
    from ihd.meter.obis import REGISTERS
    from ihd.smwap.mac import Address, MacFrame

    energy = REGISTERS[(1, 0, 1, 8, 0, 255)]
    apdu = build_push([(energy, 12345, 0)], timestamp=1_764_000_000, invoke_id=7)
    frame = MacFrame.data(
        src=Address.from_eui64("0011223344556677"),
        dst=Address.short(1),
        dst_pan=0x1D1D,
        seq=1,
        payload=apdu,
    )
    rc, out, _ = run_decode(capsys, with_fcs(frame.to_bytes(), 4).hex())
    assert rc == 0
    assert "DLMS (DATA-NOTIFICATION in the MAC payload)" in out
    assert "invoke id: 7" in out
    assert "1-0:1.8.0.255: 12345 Wh" in out


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("zz", "the frame is not hex: 'z' is not a hex digit"),
        ("12 3", "the frame is not hex: odd number of hex digits (3)"),
        ("", "the frame is not hex: no hex digits"),
        ("0200", "not a frame: 2 octets is too short for a MAC frame with its FCS"),
        ("02006ae4", "not a frame: 4 octets is too short for a MAC frame with a 4-octet FCS"),
    ],
)
def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], text: str, reason: str) -> None:
    argv = [text, "--fcs", "4"] if text == "02006ae4" else [text]
    rc, _, err = run_decode(capsys, *argv)
    assert rc == decode.EXIT_INPUT == 1
    assert one_line_error(err) == f"ihd decode: {reason}"


@pytest.mark.parametrize("bad_key", ["0011", "zz112233445566778899aabbccddeeff", "00" * 17])
def test_bad_key_is_not_echoed(capsys: pytest.CaptureFixture[str], bad_key: str) -> None:
    rc, out, err = run_decode(capsys, "02006ae479", "--key", bad_key)
    assert rc == decode.EXIT_INPUT
    assert one_line_error(err) == "ihd decode: --key: a key needs 32 hex digits"
    assert bad_key not in out + err


def test_bad_src(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run_decode(capsys, "02006ae479", "--src", "12")
    assert rc == decode.EXIT_INPUT
    assert "--src: an EUI-64 needs 16 hex digits" in one_line_error(err)


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=80),
        st.builds(
            lambda pre, sfd, rest: b"\x55" * pre + sfd + rest,
            st.integers(1, 5),
            st.sampled_from([b"\x90\x4e", b"\x7a\x0e", b"\x63\x2d", b"\x6f\x4e"]),
            st.binary(max_size=120),
        ),
    ),
    fcs_len=st.sampled_from([None, 2, 4]),
    with_key=st.booleans(),
)
def test_explain_never_raises(data: bytes, fcs_len: int | None, with_key: bool) -> None:
    from ihd.smwap.security import Key

    key = Key.from_hex(CCM[0]["key"]) if with_key else None
    exp = decode.explain(data, fcs_len=fcs_len, key=key)
    text = exp.text()
    assert text.splitlines()[-1].startswith("result: ")
    assert (exp.status == 0) == (exp.reason == "")


# --- the real command ------------------------------------------------------------------------


def ihd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*IHD, *args], capture_output=True, text=True, timeout=60, check=False)


def test_cli_decrypts_a_vector() -> None:
    v = BY_NAME["smwap_like_data_level7"]
    psdu = with_fcs(bytes.fromhex(v["secured_frame_no_fcs"]), 4)
    p = ihd("decode", psdu.hex(" "), "--key", v["key"])
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    assert plaintext_line(p.stdout).lower() == v["m_data"]
    assert "MIC ok (16 octets)" in p.stdout
    assert_no_key(v["key"], p.stdout, p.stderr)


def test_cli_failures_are_one_line_with_their_status() -> None:
    v = BY_NAME["smwap_like_data_level5"]
    mpdu = bytearray(bytes.fromhex(v["secured_frame_no_fcs"]))
    mpdu[-1] ^= 0x01  # in the MIC
    p = ihd("decode", with_fcs(bytes(mpdu), 4).hex(), "--key", v["key"])
    assert p.returncode == decode.EXIT_MIC
    assert "MIC check failed" in one_line_error(p.stderr)
    assert_no_key(v["key"], p.stdout, p.stderr)
    p = ihd("decode", "69d8zz", "--key", v["key"])
    assert p.returncode == decode.EXIT_INPUT
    assert one_line_error(p.stderr) == "ihd decode: the frame is not hex: 'z' is not a hex digit"
    assert p.stdout == ""
    p = ihd("decode", "02006ae478")
    assert p.returncode == decode.EXIT_FCS
    one_line_error(p.stderr)


def test_cli_help_lists_the_tools() -> None:
    p = ihd("--help")
    assert re.search(r"^\s+decode\s+explain one frame", p.stdout, re.M)
    assert re.search(r"^\s+sniff\s+print every frame", p.stdout, re.M)
    p = ihd("decode", "--help")
    assert p.returncode == 0
    assert "--key HEX" in p.stdout and "--fcs {2,4}" in p.stdout
    assert "exit status: 0 ok, 1 bad input, 3 bad FCS, 4 MIC failure" in p.stdout


def test_cli_decodes_a_dlms_push_from_a_real_meter() -> None:
    """``ihd decode --dlms``: the Kaifa list-1 frame of amshan's tests (see
    tests/data/dlms/README.md), whose documented content is active power import 5852 W."""
    frames = json.loads((DATA / "dlms" / "frames.json").read_text())["frames"]
    hexed = next(f["hex"] for f in frames if f["name"] == "kaifa_no_list1")
    r = subprocess.run(
        [*IHD, "decode", "--dlms", hexed], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1-0:1.7.0.255", "5852", "W"]
    both = subprocess.run(
        [*IHD, "decode", "00", "--dlms", hexed], capture_output=True, text=True, timeout=60
    )
    assert both.returncode == 1 and "not both" in both.stderr
