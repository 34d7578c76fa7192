"""``ihd sniff``: one line per frame heard, a pcap that reads back (and that tshark reads).

In-process, ``sniff()`` runs over a scripted radio whose frames come from the shared SMWAP
vectors (FCS octets computed here with ``binascii``): the line says what each frame is and
whether FCS and MIC check, and the pcap holds the same octets. The command itself runs for
real on the simulated household, briefly and sped up, stopped by ``--count``.
"""

from __future__ import annotations

import binascii
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ihd import cli
from ihd.radio.contract import RxFrame, RxInfo
from ihd.smwap.pcap import LINKTYPE_IEEE802_15_4_TAP, PcapWriter, read_pcap
from ihd.smwap.security import Key
from ihd.tools import sniff

VECTORS = json.loads((Path(__file__).parent / "data" / "smwap_vectors.json").read_text())
BY_NAME = {v["name"]: v for v in VECTORS["ccm_star"]}
V5 = BY_NAME["smwap_like_data_level5"]
KEY_HEX = V5["key"]
T0 = 1_764_000_000.0

_SCRIPT = Path(sys.executable).with_name("ihd")
IHD: list[str] = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "ihd.cli"]
TSHARK = shutil.which("tshark")

# One line: time, RSSI, channel, FCS, then the frame (see Sniffed.line).
LINE = re.compile(
    r"^\d\d:\d\d:\d\d\.\d{3}  (?P<rssi> *-?\d+\.\d| +-) dBm  ch \d+ +FCS[24] (?:ok |BAD)  \S"
)


def crc32(data: bytes) -> bytes:
    return binascii.crc32(data).to_bytes(4, "little")


class Scripted:
    """A radio that hands over the given frames, then nothing."""

    name = "scripted"

    def __init__(self, frames: list[RxFrame]) -> None:
        self.frames = list(frames)
        self.opened = self.closed = False

    def open(self) -> None:
        self.opened = True

    def receive(self, timeout: float) -> RxFrame | None:
        return self.frames.pop(0) if self.frames else None

    def transmit(self, psdu: bytes, *, fcs_len: int) -> None:
        raise AssertionError("a sniffer never transmits")

    def set_addresses(self, *, eui64: str, pan_id: int | None, short: int | None) -> None: ...

    def close(self) -> None:
        self.closed = True


def rx(psdu: bytes, i: int, *, fcs_len: int = 4, rssi: float | None = -61.5) -> RxFrame:
    return RxFrame(psdu, RxInfo(T0 + i, 3, fcs_len, True, None, rssi, None))


def scripted_frames() -> list[RxFrame]:
    secured = bytes.fromhex(V5["secured_frame_no_fcs"])
    tampered = bytearray(secured)
    tampered[-1] ^= 0x10  # in the MIC; the FCS is computed over the tampered octets
    bad_fcs = bytearray(secured + crc32(secured))
    bad_fcs[3] ^= 0x01
    ack = bytes.fromhex("02006a" + VECTORS["crc16"][0]["fcs_octets"])
    return [
        rx(secured + crc32(secured), 0),
        rx(bytes(tampered) + crc32(bytes(tampered)), 1),
        rx(bytes(bad_fcs), 2),
        rx(ack, 3, fcs_len=2, rssi=None),
        rx(b"\xff\xff\xff" + crc32(b"\xff\xff\xff"), 4),  # reserved frame version 3
        rx(b"\x25\x01\x02\x00hi" + crc32(b"\x25\x01\x02\x00hi"), 5),  # a short multipurpose
    ]


def test_sniff_prints_a_line_per_frame_and_writes_them_to_pcap() -> None:
    frames = scripted_frames()
    radio = Scripted(frames)
    buf = io.BytesIO()
    lines: list[str] = []
    n = sniff.sniff(
        radio,
        out=lines.append,
        pcap=PcapWriter(buf),
        pcap_file=buf,
        keys=sniff.Keys(extra=[Key.from_hex(KEY_HEX)]),
        count=len(frames),
        poll_s=0,
    )
    assert n == len(lines) == len(frames)
    assert radio.opened and radio.closed
    for line in lines:
        assert LINE.match(line), line
        assert KEY_HEX not in line.lower()
    good, tampered, bad_fcs, ack, junk, multi = lines
    assert "FCS4 ok" in good and "-61.5 dBm" in good and "ch 3" in good
    assert "0011223344556677 → 0x0002" in good
    assert f"sec 5 #{V5['frame_counter']} ok" in good
    assert f"{len(bytes.fromhex(V5['m_data']))} octets" in good
    assert "sec 5" in tampered and "MIC failed" in tampered
    assert "FCS4 BAD" in bad_fcs and "not checked" in bad_fcs
    assert "FCS2 ok" in ack and "ack" in ack and "seq 106" in ack and "    - dBm" in ack
    assert "not a frame" in junk
    assert "multi" in multi and "seq   1" in multi

    buf.seek(0)
    records = list(read_pcap(buf))
    assert [(r.mpdu, r.fcs_len) for r in records] == [(f.psdu, f.info.fcs_len) for f in frames]
    assert all(r.linktype == LINKTYPE_IEEE802_15_4_TAP for r in records)
    assert [r.channel for r in records] == [3] * len(frames)
    assert [r.rssi_dbm for r in records] == [f.info.rssi_dbm for f in frames]
    assert [round(r.timestamp) for r in records] == [round(f.info.timestamp) for f in frames]


def test_without_the_key_secured_frames_stay_secured() -> None:
    lines: list[str] = []
    secured = bytes.fromhex(V5["secured_frame_no_fcs"])
    sniff.sniff(Scripted([rx(secured + crc32(secured), 0)]), out=lines.append, count=1, poll_s=0)
    assert "sec 5 #258 no key" in lines[0]
    assert "octets secured" in lines[0]


def test_count_and_stop_end_the_sniff() -> None:
    lines: list[str] = []
    n = sniff.sniff(Scripted(scripted_frames()), out=lines.append, count=2, poll_s=0)
    assert n == 2 == len(lines)
    n = sniff.sniff(Scripted(scripted_frames()), out=lines.append, seconds=0.05, poll_s=0.01)
    assert n == len(scripted_frames())  # then nothing more until the time is up


@settings(max_examples=300, deadline=None)
@given(psdu=st.binary(max_size=80), fcs_len=st.sampled_from([2, 4]), keyed=st.booleans())
def test_describe_never_raises(psdu: bytes, fcs_len: int, keyed: bool) -> None:
    keys = sniff.Keys(extra=[Key.from_hex(KEY_HEX)]) if keyed else None
    line = sniff.describe(rx(psdu, 0, fcs_len=fcs_len), keys).line()
    assert LINE.match(line), line


# --- the command, on the simulated household -------------------------------------------------


def test_sniff_in_process_on_the_simulated_air(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pcap = tmp_path / "air.pcap"
    args = cli.parser().parse_args(
        ["sniff", "--count", "6", "--speed", "120", "--seconds", "30", "--pcap", str(pcap)]
    )
    assert sniff.run(args) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 6, out + err
    assert err.strip().splitlines()[-1] == "6 frames"
    for line in lines:
        assert LINE.match(line), line
    data = [line for line in lines if "  data " in line]
    acks = [line for line in lines if "  ack " in line]
    assert data and acks, out  # the simulated display acknowledges the meters' pushes
    for line in data:  # the demo's keys are known: every push decrypts into readings
        assert re.search(r"sec 5 #\d+ ok", line), line
        assert "1-0:1.8.0.255" in line
    seqs = [tuple(re.findall(r"seq +(\d+)", line)) for line in data]
    assert len(set(seqs)) == len(seqs), "a push was sent again: nobody acknowledged it"
    with pcap.open("rb") as fh:
        assert len(list(read_pcap(fh))) == 6


def ihd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*IHD, *args], capture_output=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def sniffed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """`ihd sniff` run for real: 8 frames of the simulated air, a minute a second."""
    pcap = tmp_path_factory.mktemp("sniff") / "air.pcap"
    p = ihd("sniff", "--count", "8", "--speed", "60", "--seconds", "40", "--pcap", str(pcap))
    out, err = p.stdout.decode(), p.stderr.decode()
    assert p.returncode == 0, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "8 frames"
    return pcap, out.splitlines()


def test_cli_sniff_lines_and_pcap(sniffed: tuple[Path, list[str]]) -> None:
    pcap, lines = sniffed
    assert len(lines) == 8
    for line in lines:
        assert LINE.match(line), line
    with pcap.open("rb") as fh:
        records = list(read_pcap(fh))
    assert len(records) == len(lines)
    for r, line in zip(records, lines, strict=True):
        assert r.linktype == LINKTYPE_IEEE802_15_4_TAP
        assert r.fcs_len in (2, 4) and f"FCS{r.fcs_len} " in line
        assert r.channel == 0 and r.page == 9
        m = LINE.match(line)
        assert m is not None and r.rssi_dbm is not None
        assert abs(float(m["rssi"]) - r.rssi_dbm) <= 0.051  # the pcap holds a float32
        assert r.fcs_len == 4  # the demo household's meters send CRC-32
        assert crc32(r.mpdu[:-4]) == r.mpdu[-4:]


def test_cli_sniff_pcap_to_stdout() -> None:
    p = ihd("sniff", "--count", "2", "--speed", "60", "--seconds", "40", "--pcap", "-")
    assert p.returncode == 0, p.stderr
    records = list(read_pcap(io.BytesIO(p.stdout)))
    assert len(records) == 2
    err = p.stderr.decode().splitlines()
    assert err[-1] == "2 frames"
    assert len([line for line in err if LINE.match(line)]) == 2  # the lines went to stderr


def test_cli_sniff_reader_leaving_is_not_an_error() -> None:
    """`ihd sniff | head -1`: the closed pipe ends the sniff quietly."""
    proc = subprocess.Popen(
        [*IHD, "sniff", "--speed", "60", "--seconds", "40"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline().decode()
    proc.stdout.close()
    try:
        err = proc.stderr.read().decode()
        rc = proc.wait(timeout=40)
    finally:
        proc.kill()
    assert LINE.match(first), first
    assert rc == 0, err
    assert "Traceback" not in err and "Broken pipe" not in err


def test_cli_sniff_bad_arguments_are_one_line(tmp_path: Path) -> None:
    secret = "00112233445566778899aabbccddeefX"
    p = ihd("sniff", "--count", "1", "--key", secret)
    assert p.returncode == 1
    assert p.stderr.decode().strip() == "ihd sniff: --key: a key needs 32 hex digits"
    assert secret.lower() not in (p.stdout + p.stderr).decode().lower()
    p = ihd("sniff", "--count", "1", "--pcap", str(tmp_path / "no" / "such" / "dir.pcap"))
    assert p.returncode == 1
    err = p.stderr.decode().strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ihd sniff: ") and "Traceback" not in err[0]
    p = ihd("sniff", "--count", "0")
    assert p.returncode == 2  # argparse: a usage error
    assert b"must be at least 1" in p.stderr


# --- tshark ----------------------------------------------------------------------------------


@pytest.mark.skipif(TSHARK is None, reason="tshark is not on PATH")
def test_tshark_reads_the_capture_and_decrypts_it(sniffed: tuple[Path, list[str]]) -> None:
    from ihd.sim.world import demo_world
    from ihd.smwap.mac import parse_mpdu
    from ihd.smwap.security import unsecure

    pcap, lines = sniffed
    world = demo_world(seed=1, start=T0)  # the household `ihd sniff` listens to (seed 1)
    keys = [(m.network_key.value.hex(), m.key_index) for m in world.meters if m.network_key]
    assert TSHARK is not None
    cmd = [TSHARK, "-n", "-r", str(pcap)]
    for proto in ("6lowpan", "zbee_nwk", "zbee_nwk_gp", "lwm", "zbip_beacon", "zbee_beacon"):
        cmd += ["--disable-protocol", proto]
    for key_hex, index in keys:
        cmd += ["-o", f'uat:ieee802154_keys:"{key_hex}","{index}","No hash"']
    cmd += ["-T", "json"]
    for f in ("wpan.frame_type", "wpan.fcs_ok", "wpan.seq_no", "wpan.key_number", "data.data"):
        cmd += ["-e", f]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    packets = [pkt["_source"]["layers"] for pkt in json.loads(p.stdout)]
    assert len(packets) == len(lines)
    table = world.key_table()
    with pcap.open("rb") as fh:
        records = list(read_pcap(fh))
    decrypted = 0
    for r, theirs, line in zip(records, packets, lines, strict=True):
        assert theirs["wpan.fcs_ok"] == ["1"], line
        assert r.fcs_len is not None
        frame = parse_mpdu(r.mpdu, r.fcs_len)
        assert theirs["wpan.seq_no"] == [str(frame.seq)]
        if frame.aux is not None and frame.src is not None:
            key = table.lookup(frame.aux, frame.src.value)
            assert key is not None
            plain = unsecure(r.mpdu[: -r.fcs_len], frame, key, src_ext=frame.src.value)
            assert "wpan.key_number" in theirs, f"tshark did not decrypt: {line}"
            assert theirs["data.data"] == [plain.payload.hex()]
            decrypted += 1
    assert decrypted > 0
