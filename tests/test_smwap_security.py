"""802.15.4 CCM* frame security: the shared vectors (IEEE Annex C.2.1-C.2.3 and computed
levels), round trips over every level and key identifier mode, tampering, the level policy,
and keys that never show themselves."""

from __future__ import annotations

import copy
import json
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from hypothesis import given, settings
from hypothesis import strategies as st

from ihd.smwap.errors import FrameError
from ihd.smwap.fcs import compute_fcs
from ihd.smwap.mac import (
    Address,
    AuxSecurityHeader,
    FrameType,
    FrameVersion,
    HeaderIE,
    MacFrame,
    PayloadIE,
    parse_mpdu,
    parse_mpdu_unchecked,
)
from ihd.smwap.security import (
    DEFAULT_POLICY,
    MIC_LEN,
    Key,
    KeyTable,
    SecurityError,
    SecurityPolicy,
    check_level,
    is_encrypted,
    key_id,
    level_satisfies,
    nonce,
    secure,
    unsecure,
)

VECTORS = json.loads((Path(__file__).parent / "data" / "smwap_vectors.json").read_text())
CCM = VECTORS["ccm_star"]
BY_NAME = {v["name"]: v for v in CCM}
ANNEX_KEY_HEX = "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
SMWAP_KEY_HEX = "00112233445566778899aabbccddeeff"
ALL_KEY_HEX = {h for v in CCM for h in (v["key"].lower(), v["key"].upper())}

METER = Address.from_eui64("0011223344556677")
DISPLAY = Address.short(0x0001)


def _h(s: str) -> bytes:
    return bytes.fromhex(s)


def _vector_frames(v: dict[str, Any]) -> tuple[bytes, MacFrame, MacFrame, Key, int]:
    """(secured octets, parsed secured frame, plaintext frame, key, source EUI-64).

    The plaintext frame comes from the vector's a/m split: the secured frame's header is
    the first ``hlen`` octets of ``a``; whatever ``a`` holds after it (the clear payload at
    levels 1-3, the Command ID of the 2006 command) and then ``m`` is the plaintext payload.
    """
    secured = _h(v["secured_frame_no_fcs"])
    parsed = parse_mpdu_unchecked(secured)
    hlen = len(secured) - len(parsed.payload)
    a, m = _h(v["a_data"]), _h(v["m_data"])
    assert a[:hlen] == secured[:hlen]
    plain = replace(parsed, payload=a[hlen:] + m)
    return secured, parsed, plain, Key.from_hex(v["key"]), int(v["src_ext_addr"], 16)


# --- vectors -------------------------------------------------------------------------------


@pytest.mark.parametrize("v", CCM, ids=lambda v: v["name"])
def test_vector_nonce_and_mic_length(v: dict[str, Any]) -> None:
    n = nonce(int(v["src_ext_addr"], 16), v["frame_counter"], v["security_level"])
    assert n.hex() == v["nonce"]
    assert len(n) == 13
    assert MIC_LEN[v["security_level"]] == v["mic_len"]


@pytest.mark.parametrize("v", CCM, ids=lambda v: v["name"])
def test_vector_secure_gives_the_secured_frame(v: dict[str, Any]) -> None:
    secured, _, plain, key, src = _vector_frames(v)
    assert secure(plain, key, src_ext=src) == secured


@pytest.mark.parametrize("v", CCM, ids=lambda v: v["name"])
def test_vector_unsecure_gives_the_plaintext(v: dict[str, Any]) -> None:
    secured, parsed, plain, key, src = _vector_frames(v)
    check_level(parsed.aux, SecurityPolicy(min_level=parsed.aux.level if parsed.aux else 0))
    got = unsecure(secured, parsed, key, src_ext=src)
    assert got == plain
    assert got.aux == parsed.aux
    assert got.payload == _h(v["a_data"])[len(secured) - len(parsed.payload) :] + _h(v["m_data"])


@pytest.mark.parametrize("v", CCM, ids=lambda v: v["name"])
def test_vector_through_fcs_and_parse_mpdu(v: dict[str, Any]) -> None:
    secured, _, plain, key, src = _vector_frames(v)
    for fcs_len in (2, 4):
        frame = parse_mpdu(secured + compute_fcs(secured, fcs_len), fcs_len)
        assert unsecure(secured, frame, key, src_ext=src) == plain


def test_annex_c21_beacon_level2_payload_stays_clear() -> None:
    v = BY_NAME["ieee_annexC_2_1_beacon_MIC64"]
    secured, parsed, plain, key, src = _vector_frames(v)
    assert plain.frame_type == FrameType.BEACON
    assert secured[: len(secured) - 8] == _h(v["a_data"])  # whole frame authenticated, clear
    hlen = len(secured) - len(parsed.payload)
    assert plain.payload == secured[hlen:-8]  # the beacon payload, in clear
    assert plain.payload.endswith(_h("51525354"))
    with pytest.raises(SecurityError) as e:
        unsecure(secured, parsed, Key.from_hex(SMWAP_KEY_HEX), src_ext=src)
    assert e.value.counter == "mic_failure"
    assert unsecure(secured, parsed, key, src_ext=src) == plain


def test_annex_c22_data_level4_is_ctr_without_mic() -> None:
    v = BY_NAME["ieee_annexC_2_2_data_ENC"]
    secured, parsed, plain, key, src = _vector_frames(v)
    assert plain.payload == b"abcd"
    assert len(secured) == len(_h(v["a_data"])) + 4  # no MIC
    assert secured.endswith(_h("d43e022b"))
    assert unsecure(secured, parsed, key, src_ext=src).payload == b"abcd"
    # No MIC: a wrong key "decrypts" without complaint. This is why the policy refuses 4.
    garbage = unsecure(secured, parsed, Key.from_hex(SMWAP_KEY_HEX), src_ext=src)
    assert garbage.payload != b"abcd"
    with pytest.raises(SecurityError) as e:
        check_level(parsed.aux)
    assert e.value.counter == "downgrade"


def test_annex_c23_command_level6_command_id_stays_in_a() -> None:
    v = BY_NAME["ieee_annexC_2_3_command_ENC_MIC64"]
    secured, parsed, plain, key, src = _vector_frames(v)
    assert plain.frame_type == FrameType.COMMAND and plain.version == FrameVersion.V2006
    hlen = len(secured) - len(parsed.payload)
    assert secured[hlen] == 0x01 == plain.payload[0]  # association request, in clear
    assert _h(v["a_data"]) == secured[: hlen + 1]
    # Encrypting the Command ID too (the 2015 reading) gives a different frame.
    as_2015 = AESCCM(key.value, tag_length=8).encrypt(_h(v["nonce"]), plain.payload, secured[:hlen])
    assert secured[:hlen] + as_2015 != secured
    assert unsecure(secured, parsed, key, src_ext=src) == plain


# --- round trips ---------------------------------------------------------------------------

_addresses = st.one_of(
    st.integers(0, 0xFFFF).map(Address.short),
    st.integers(0, (1 << 64) - 1).map(Address.ext),
)
_header_ies = st.builds(
    HeaderIE, st.integers(0, 0xFF).filter(lambda i: i not in (0x7E, 0x7F)), st.binary(max_size=8)
)
_payload_ies = st.builds(PayloadIE, st.integers(0, 14), st.binary(max_size=8))
_keys = st.binary(min_size=16, max_size=16).map(Key)


@st.composite
def _aux(draw: st.DrawFn, level: int | None = None) -> AuxSecurityHeader:
    mode = draw(st.integers(0, 3))
    return AuxSecurityHeader(
        level=draw(st.integers(1, 7)) if level is None else level,
        frame_counter=draw(st.integers(0, 0xFFFFFFFE)),
        key_index=None if mode == 0 else draw(st.integers(0, 255)),
        key_source=draw(st.binary(min_size=(0, 0, 4, 8)[mode], max_size=(0, 0, 4, 8)[mode])),
    )


@st.composite
def plaintext_frames(draw: st.DrawFn, level: int | None = None) -> MacFrame:
    version = draw(st.sampled_from([FrameVersion.V2006, FrameVersion.V2015]))
    v2 = version == FrameVersion.V2015
    ftype = draw(st.sampled_from([FrameType.BEACON, FrameType.DATA, FrameType.COMMAND]))
    src = draw(_addresses)
    dst = draw(st.none() | _addresses)
    payload = draw(
        st.binary(min_size=1 if ftype == FrameType.COMMAND and not v2 else 0, max_size=48)
    )
    header_ies = tuple(draw(st.lists(_header_ies, max_size=2))) if v2 else ()
    payload_ies = tuple(draw(st.lists(_payload_ies, max_size=2))) if v2 else ()
    pan = draw(st.integers(0, 0xFFFF))
    try:
        return MacFrame.data(
            src=src,
            dst=dst,
            dst_pan=pan,
            seq=draw(st.integers(0, 255)),
            payload=payload,
            version=version,
            aux=draw(_aux(level)),
            header_ies=header_ies,
            payload_ies=payload_ies,
            frame_type=ftype,
            ack_request=draw(st.booleans()),
        )
    except ValueError:  # a PAN layout this version cannot send with one PAN ID
        return MacFrame.data(
            src=src,
            dst=dst,
            dst_pan=None,
            src_pan=pan,
            seq=1,
            payload=payload,
            version=version,
            aux=draw(_aux(level)),
            header_ies=header_ies,
            payload_ies=payload_ies,
            frame_type=ftype,
        )


@settings(max_examples=200, deadline=None)
@given(plaintext_frames(), _keys, st.integers(0, (1 << 64) - 1), st.sampled_from([2, 4]))
def test_round_trip_every_level_and_key_id_mode(
    frame: MacFrame, key: Key, src: int, fcs_len: int
) -> None:
    aux = frame.aux
    assert aux is not None
    raw = secure(frame, key, src_ext=src)
    parsed = parse_mpdu(raw + compute_fcs(raw, fcs_len), fcs_len)
    assert parsed.aux == aux
    assert parsed.secured_payload_ies == bool(frame.payload_ies)
    table = KeyTable()
    if aux.key_id_mode == 0:
        table.add_implicit(key, src_ext=src)
    elif aux.key_id_mode == 1:
        assert aux.key_index is not None
        table.add_index(aux.key_index, key)
    else:
        assert aux.key_index is not None
        table.add_source(aux.key_source, aux.key_index, key)
    found = table.require(parsed.aux, src) if parsed.aux else None
    assert found is key
    plain = unsecure(raw, parsed, found, src_ext=src)
    assert plain == frame
    assert secure(plain, key, src_ext=src) == raw
    _independent_check(raw, parsed, frame, key, src)


def _independent_check(raw: bytes, parsed: MacFrame, frame: MacFrame, key: Key, src: int) -> None:
    """Recompute the secured frame with cryptography directly from the 802.15.4 rules."""
    aux = frame.aux
    assert aux is not None and aux.frame_counter is not None
    n = src.to_bytes(8, "big") + aux.frame_counter.to_bytes(4, "big") + bytes([aux.level])
    hlen = len(raw) - len(parsed.payload)
    body = b"".join(ie.to_bytes() for ie in frame.payload_ies)
    if frame.payload_ies and frame.payload:
        body += b"\x00\xf8"
    body += frame.payload
    clear = 1 if frame.frame_type == FrameType.COMMAND and frame.version < 2 else 0
    header = raw[:hlen]
    if aux.level < 4:
        want = (
            header + body + AESCCM(key.value, tag_length=aux.mic_len).encrypt(n, b"", header + body)
        )
    elif aux.level == 4:
        enc = Cipher(algorithms.AES(key.value), modes.CTR(b"\x01" + n + b"\x00\x01")).encryptor()
        want = header + body[:clear] + enc.update(body[clear:]) + enc.finalize()
    else:
        a = header + body[:clear]
        want = a + AESCCM(key.value, tag_length=aux.mic_len).encrypt(n, body[clear:], a)
    assert raw == want


def test_payload_ies_and_header_ies_2015_level5() -> None:
    key = Key.from_hex(SMWAP_KEY_HEX)
    frame = MacFrame.data(
        src=METER,
        dst=DISPLAY,
        dst_pan=0x1D1D,
        seq=9,
        payload=b"reading",
        version=FrameVersion.V2015,
        aux=AuxSecurityHeader(5, 77, 1),
        header_ies=(HeaderIE(0x00, b"\x01\x02"),),
        payload_ies=(PayloadIE(2, b"vendor"),),
    )
    raw = secure(frame, key, src_ext=METER.value)
    parsed = parse_mpdu_unchecked(raw)
    assert parsed.secured_payload_ies and parsed.header_ies == frame.header_ies
    assert b"vendor" not in raw and b"reading" not in raw
    assert unsecure(raw, parsed, key, src_ext=METER.value) == frame
    _independent_check(raw, parsed, frame, key, METER.value)


# --- tampering -----------------------------------------------------------------------------


def _receive(raw: bytes, key: Key, src: int, policy: SecurityPolicy = DEFAULT_POLICY) -> MacFrame:
    """Parse, policy, unsecure: the receive path minus the replay guard."""
    frame = parse_mpdu_unchecked(raw)
    check_level(frame.aux, policy)
    return unsecure(raw, frame, key, src_ext=src)


def _tamper_cases() -> list[tuple[str, bytes, Key, int]]:
    cases = []
    for v in CCM:
        if v["security_level"] >= 5:
            secured, _, _, key, src = _vector_frames(v)
            cases.append((v["name"], secured, key, src))
    key = Key.from_hex(SMWAP_KEY_HEX)
    frame = MacFrame.data(
        src=METER,
        dst=DISPLAY,
        dst_pan=0x1D1D,
        seq=9,
        payload=b"E=012345.678kWh",
        version=FrameVersion.V2015,
        aux=AuxSecurityHeader(7, 1000, 3, b"\xaa\xbb\xcc\xdd"),
        header_ies=(HeaderIE(0x00, b"\x01\x02"),),
        payload_ies=(PayloadIE(2, b"vendor"),),
    )
    cases.append(
        ("2015_level7_ies_mode2", secure(frame, key, src_ext=METER.value), key, METER.value)
    )
    return cases


@pytest.mark.parametrize(
    ("name", "secured", "key", "src"), _tamper_cases(), ids=[c[0] for c in _tamper_cases()]
)
def test_every_bit_flip_is_refused(name: str, secured: bytes, key: Key, src: int) -> None:
    assert _receive(secured, key, src).payload  # the untouched frame passes
    outcomes: dict[str, int] = {}
    for bit in range(8 * len(secured)):
        tampered = bytearray(secured)
        tampered[bit // 8] ^= 1 << (bit % 8)
        try:
            got = _receive(bytes(tampered), key, src)
        except FrameError:
            outcomes["frame_error"] = outcomes.get("frame_error", 0) + 1
        except SecurityError as e:
            outcomes[e.counter] = outcomes.get(e.counter, 0) + 1
        else:
            pytest.fail(f"bit {bit} flipped, frame accepted as {got!r}")
    assert outcomes["mic_failure"] > 0
    assert set(outcomes) <= {"frame_error", "mic_failure", "downgrade", "unsupported"}


def test_wrong_key_is_mic_failure_and_message_hides_secrets() -> None:
    v = BY_NAME["smwap_like_data_level5"]
    secured, parsed, plain, _, src = _vector_frames(v)
    wrong = Key.from_hex(ANNEX_KEY_HEX)
    with pytest.raises(SecurityError) as e:
        unsecure(secured, parsed, wrong, src_ext=src)
    assert e.value.counter == "mic_failure"
    text = str(e.value) + repr(e.value) + e.value.reason
    for h in ALL_KEY_HEX:
        assert h not in text
    assert plain.payload.hex() not in text and str(plain.payload) not in text


def test_level4_cannot_detect_tampering_so_policy_refuses_it() -> None:
    key = Key.from_hex(SMWAP_KEY_HEX)
    frame = MacFrame.data(
        src=METER,
        dst=DISPLAY,
        dst_pan=0x1D1D,
        seq=1,
        payload=b"E=1.000kWh",
        aux=AuxSecurityHeader(4, 5),
    )
    raw = secure(frame, key, src_ext=METER.value)
    tampered = raw[:-1] + bytes([raw[-1] ^ 0x01])
    got = _receive(tampered, key, METER.value, SecurityPolicy(min_level=4))
    assert got.payload != frame.payload  # silently wrong: no MIC
    for policy in (DEFAULT_POLICY, SecurityPolicy(5), SecurityPolicy(6), SecurityPolicy(1)):
        with pytest.raises(SecurityError) as e:
            _receive(raw, key, METER.value, policy)
        assert e.value.counter == "downgrade"


# --- policy --------------------------------------------------------------------------------

_ACCEPTED = {  # min_level -> levels accepted (0 = unsecured)
    0: {0, 1, 2, 3, 4, 5, 6, 7},
    1: {1, 2, 3, 5, 6, 7},
    2: {2, 3, 6, 7},
    3: {3, 7},
    4: {4, 5, 6, 7},
    5: {5, 6, 7},
    6: {6, 7},
    7: {7},
}


@pytest.mark.parametrize("min_level", range(8))
def test_policy_table(min_level: int) -> None:
    policy = SecurityPolicy(min_level)
    for level in range(8):
        want = level in _ACCEPTED[min_level]
        assert policy.accepts(level) is want
        assert level_satisfies(level, min_level) is want
        aux = None if level == 0 else AuxSecurityHeader(level, 1)
        if want:
            check_level(aux, policy)
        else:
            with pytest.raises(SecurityError) as e:
                check_level(aux, policy)
            assert e.value.counter == "downgrade"


def test_policy_defaults_and_bounds() -> None:
    assert DEFAULT_POLICY.min_level == 5
    with pytest.raises(SecurityError, match="unsecured"):
        check_level(None)
    for bad in (-1, 8):
        with pytest.raises(ValueError):
            SecurityPolicy(bad)
    assert [is_encrypted(lv) for lv in range(8)] == [False] * 4 + [True] * 4
    with pytest.raises(ValueError):
        is_encrypted(8)


# --- refusals ------------------------------------------------------------------------------


def test_decrypted_payload_ies_that_do_not_parse_are_bad_frame() -> None:
    key = Key.from_hex(SMWAP_KEY_HEX)
    # A header saying "payload IEs follow" (HT1), then m = a header IE descriptor.
    shell = MacFrame.data(
        src=METER,
        dst=DISPLAY,
        dst_pan=0x1D1D,
        seq=1,
        payload=bytes(6),
        version=FrameVersion.V2015,
        aux=AuxSecurityHeader(5, 9),
        header_ies=(HeaderIE(0, b""),),
    )
    shell = replace(shell, secured_payload_ies=True)
    built = shell.to_bytes()
    header = built[: len(built) - 6]
    n = nonce(METER.value, 9, 5)
    raw = header + AESCCM(key.value, tag_length=4).encrypt(n, b"\x01\x00", header)
    parsed = parse_mpdu_unchecked(raw)
    assert parsed.secured_payload_ies
    with pytest.raises(SecurityError) as e:
        unsecure(raw, parsed, key, src_ext=METER.value)
    assert e.value.counter == "bad_frame"


def test_2006_command_without_command_id() -> None:
    key = Key.from_hex(SMWAP_KEY_HEX)
    raw = MacFrame.data(
        src=METER,
        dst=DISPLAY,
        dst_pan=0x1D1D,
        seq=1,
        payload=bytes(4),
        aux=AuxSecurityHeader(5, 9),
        frame_type=FrameType.COMMAND,
    ).to_bytes()
    with pytest.raises(SecurityError) as e:
        unsecure(raw, parse_mpdu_unchecked(raw), key, src_ext=METER.value)
    assert e.value.counter == "bad_frame"
    plain = MacFrame.data(
        src=METER,
        dst=DISPLAY,
        dst_pan=0x1D1D,
        seq=1,
        payload=b"",
        aux=AuxSecurityHeader(5, 9),
        frame_type=FrameType.COMMAND,
    )
    with pytest.raises(ValueError, match="Command ID"):
        secure(plain, key, src_ext=METER.value)


@pytest.mark.parametrize(
    "aux",
    [AuxSecurityHeader(5, None), AuxSecurityHeader(5, 3, asn_in_nonce=True)],
    ids=["counter_suppressed", "asn_in_nonce"],
)
def test_tsch_forms_are_unsupported(aux: AuxSecurityHeader) -> None:
    key = Key.from_hex(SMWAP_KEY_HEX)
    raw = MacFrame.data(
        src=METER,
        dst=DISPLAY,
        dst_pan=0x1D1D,
        seq=1,
        payload=bytes(8),
        version=FrameVersion.V2015,
        aux=aux,
    ).to_bytes()
    with pytest.raises(SecurityError) as e:
        unsecure(raw, parse_mpdu_unchecked(raw), key, src_ext=METER.value)
    assert e.value.counter == "unsupported"
    plain = MacFrame.data(
        src=METER,
        dst=DISPLAY,
        dst_pan=0x1D1D,
        seq=1,
        payload=b"x",
        version=FrameVersion.V2015,
        aux=aux,
    )
    with pytest.raises(ValueError):
        secure(plain, key, src_ext=METER.value)


def test_unsecured_frames() -> None:
    key = Key.from_hex(SMWAP_KEY_HEX)
    frame = MacFrame.data(src=METER, dst=DISPLAY, dst_pan=0x1D1D, seq=1, payload=b"x")
    with pytest.raises(ValueError, match="level 1-7"):
        secure(frame, key, src_ext=METER.value)
    raw = frame.to_bytes()
    with pytest.raises(SecurityError) as e:
        unsecure(raw, frame, key, src_ext=METER.value)
    assert e.value.counter == "downgrade"
    one, other = (
        _h(BY_NAME[n]["secured_frame_no_fcs"])
        for n in ("smwap_like_data_level5", "smwap_like_data_level6")
    )
    with pytest.raises(ValueError):  # frame and raw do not belong together
        unsecure(one, parse_mpdu_unchecked(other), key, src_ext=METER.value)


def test_security_error_pickles() -> None:
    e = pickle.loads(pickle.dumps(SecurityError("MIC check failed", "mic_failure")))
    assert (e.reason, e.counter) == ("MIC check failed", "mic_failure")
    assert str(e) == "MIC check failed (mic_failure)"


# --- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize("hex_text", [ANNEX_KEY_HEX, SMWAP_KEY_HEX])
def test_key_never_shows_itself(hex_text: str) -> None:
    key = Key.from_hex(hex_text.upper())
    assert key == Key.from_hex(hex_text) == Key(bytes.fromhex(hex_text))
    assert key.value == bytes.fromhex(hex_text)
    shown = [
        repr(key),
        str(key),
        f"{key}",
        f"{key!r}",
        f"{key:>40}",
        repr([key]),
        repr({"k": key}),
        repr(KeyTable()),
    ]
    for text in shown:
        for h in (hex_text.lower(), hex_text.upper(), str(key.value), key.value.hex()[:8]):
            assert h not in text
    assert repr(key) == "Key(<16 octets>)"
    with pytest.raises(TypeError):
        pickle.dumps(key)
    assert copy.copy(key) is key and copy.deepcopy(key) is key
    with pytest.raises(AttributeError):
        key._value = b"x" * 16  # type: ignore[misc]
    assert key != Key(bytes(16)) and key != hex_text and hash(key) == hash(Key.from_hex(hex_text))


@pytest.mark.parametrize(
    "text",
    [ANNEX_KEY_HEX[:-1], ANNEX_KEY_HEX + "00", ANNEX_KEY_HEX[:-2] + "zz", SMWAP_KEY_HEX + "g"],
)
def test_from_hex_errors_do_not_echo_the_input(text: str) -> None:
    with pytest.raises(ValueError) as e:
        Key.from_hex(text)
    msg = str(e.value) + repr(e.value)
    assert text not in msg and text[:16] not in msg and text[:16].upper() not in msg
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_key_from_hex_separators_and_bad_lengths() -> None:
    key = Key.from_hex("c0:c1:c2:c3:c4:c5:c6:c7:c8:c9:ca:cb:cc:cd:ce:cf")
    assert key == Key.from_hex(ANNEX_KEY_HEX)
    assert Key.from_hex("C0C1C2C3 C4C5C6C7-C8C9CACB CCCDCECF") == key
    with pytest.raises(ValueError, match="16 octets, not 15"):
        Key(bytes(15))
    with pytest.raises(TypeError):
        Key("c0" * 16)  # type: ignore[arg-type]


def test_key_table_lookup_by_mode_and_source() -> None:
    default, meter_key, idx_key, src_key = (Key(bytes([i]) * 16) for i in range(4))
    gas = 0xACDE480000000002
    table = KeyTable()
    table.add_implicit(default)
    table.add_implicit(meter_key, src_ext=METER.value)
    table.add_index(1, idx_key)
    table.add_source(b"\xaa\xbb\xcc\xdd", 3, src_key, src_ext=gas)
    implicit = AuxSecurityHeader(5, 1)
    assert table.lookup(implicit, METER.value) is meter_key
    assert table.lookup(implicit, gas) is default
    assert table.lookup(AuxSecurityHeader(5, 1, 1), gas) is idx_key
    assert table.lookup(AuxSecurityHeader(5, 1, 2), gas) is None
    mode2 = AuxSecurityHeader(5, 1, 3, b"\xaa\xbb\xcc\xdd")
    assert table.lookup(mode2, gas) is src_key
    assert table.lookup(mode2, METER.value) is None
    with pytest.raises(SecurityError) as e:
        table.require(mode2, METER.value)
    assert e.value.counter == "unknown_key"
    assert [key_id(a) for a in (implicit, AuxSecurityHeader(5, 1, 1), mode2)] == [
        "0",
        "1:01",
        "2:AABBCCDD:03",
    ]
    assert key_id(AuxSecurityHeader(5, 1, 255, bytes(range(8)))) == "3:0001020304050607:FF"
    text = repr(table)
    assert text == ("KeyTable([*/0, */1:01, 0011223344556677/0, ACDE480000000002/2:AABBCCDD:03])")
    assert len(table) == 4
    assert table.remove_source(gas) == 1 and table.lookup(mode2, gas) is None
    with pytest.raises(TypeError):
        pickle.dumps(table)
    with pytest.raises(ValueError):
        table.add_source(b"\x00" * 5, 1, default)
    with pytest.raises(ValueError):
        table.add_index(256, default)


def test_key_table_repr_and_errors_hide_keys() -> None:
    table = KeyTable()
    for h in (ANNEX_KEY_HEX, SMWAP_KEY_HEX):
        table.add_index(int(h[:2], 16), Key.from_hex(h), src_ext=METER.value)
    with pytest.raises(SecurityError) as e:
        table.require(AuxSecurityHeader(5, 1, 7), METER.value)
    for text in (repr(table), str(table), str(e.value)):
        for h in ALL_KEY_HEX:
            assert h not in text


def test_aesccm_is_cached_per_mic_length() -> None:
    key = Key.from_hex(SMWAP_KEY_HEX)
    assert key.ccm(4) is key.ccm(4)
    assert key.ccm(4) is not key.ccm(8)
