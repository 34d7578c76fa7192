"""ihd.meter.cipher: general-glo-ciphering, the key policy, and the dlms-cosem quirks we
work around (each with its own test, showing the library's behaviour next to ours).

Ciphertexts are made with dlms-cosem's ``security.encrypt`` (the reference GCM of the
library) or with ``cryptography`` directly, never only with our own code; the real
encryption-only frame is Netz NÖ's published example.
"""

from __future__ import annotations

import contextlib
import json
import pickle
from datetime import UTC
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from dlms_cosem import security as dlms_security
from dlms_cosem import time as dlms_time
from dlms_cosem.protocol.xdlms.data_notification import DataNotification
from dlms_cosem.protocol.xdlms.general_global_cipher import GeneralGlobalCipher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ihd.meter import (
    DlmsKeys,
    MeterAuthError,
    MeterDecodeError,
    MeterKeyError,
    Utility,
    build_push,
    cipher_apdu,
    decipher,
    decode_push,
    unwrap,
)
from ihd.meter.ber import encode_length, read_length
from ihd.meter.cipher import parse_ciphered
from ihd.smwap.keys import PairedMeter
from ihd.smwap.security import Key

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
TITLE = bytes.fromhex("4D4D4D0000BC614E")  # "MMM" + serial, the Green Book's example title
PUSH = build_push([((1, 0, 1, 8, 0, 255), 12345678, 0)], timestamp=1_700_000_000, invoke_id=9)
NOE = next(
    f
    for f in json.loads((Path(__file__).parent / "data" / "dlms" / "frames.json").read_text())[
        "frames"
    ]
    if f["name"] == "netz_noe_kaifa_mbus_ciphered"
)
NOE_KEY = bytes.fromhex(NOE["keys"]["encryption_key"])


def keys(**kw: object) -> DlmsKeys:
    return DlmsKeys(EK, AK, **kw)  # type: ignore[arg-type]


def reference_ggc(plain: bytes, sc: int = 0x30, ic: int = 1, title: bytes = TITLE) -> bytes:
    """general-glo-ciphering made with dlms-cosem's encrypt and a hand-written header."""
    ct = dlms_security.encrypt(
        security_control=dlms_security.SecurityControlField.from_bytes(bytes((sc,))),
        system_title=title,
        invocation_counter=ic,
        key=EK,
        plain_text=plain,
        auth_key=AK,
    )
    content = bytes((sc,)) + ic.to_bytes(4, "big") + ct
    n = len(content)
    length = (
        bytes((n,)) if n < 128 else bytes((0x81, n)) if n < 256 else b"\x82" + n.to_bytes(2, "big")
    )
    return b"\xdb\x08" + title + length + content


def decode(data: bytes, k: DlmsKeys | None = None) -> object:
    return decode_push(data, meter="M", utility=Utility.ELECTRICITY, received_at=0.0, keys=k)


# ---------------------------------------------------------------------- the happy paths


def test_reference_ciphertext_deciphers_and_authenticates() -> None:
    data = reference_ggc(PUSH, ic=0x01234567)
    d = decipher(data, keys())
    assert d.apdu == PUSH
    assert (d.system_title, d.invocation_counter, d.security_control) == (TITLE, 0x01234567, 0x30)
    assert d.authenticated
    push = decode_push(data, meter="M", utility=Utility.ELECTRICITY, received_at=0, keys=keys())
    assert push.authenticated and push.readings[0].raw == 12345678


@pytest.mark.parametrize("sc", [0x30, 0x20, 0x21, 0x10, 0x00, 0x31, 0x70])
def test_cipher_apdu_round_trip(sc: int) -> None:
    data = cipher_apdu(
        PUSH, keys=keys(), system_title=TITLE, invocation_counter=7, security_control=sc
    )
    d = decipher(data, keys())
    assert d.apdu == PUSH
    assert d.authenticated == bool(sc & 0x10)
    if sc & 0x30 == 0x30:
        assert data == reference_ggc(PUSH, sc=sc, ic=7)  # same octets as the library


def test_suite_2_uses_256_bit_keys() -> None:
    k = DlmsKeys(bytes(range(32)), bytes(range(32, 64)))
    data = cipher_apdu(
        PUSH, keys=k, system_title=TITLE, invocation_counter=1, security_control=0x32
    )
    assert decipher(data, k).apdu == PUSH
    with pytest.raises(MeterKeyError, match="suite 2 needs 32-octet keys"):
        decipher(data, keys())


def test_keys_from_pairing() -> None:
    meter = PairedMeter(
        eui64=1,
        utility="electricity",
        label="x",
        pan_id=1,
        network_key=Key(bytes(16)),
        dlms_system_title=TITLE,
        dlms_encryption_key=Key(EK),
        dlms_authentication_key=Key(AK),
    )
    k = DlmsKeys.from_paired(meter)
    assert k == keys(system_title=TITLE)
    assert decipher(reference_ggc(PUSH), k).authenticated
    bare = PairedMeter(
        eui64=1, utility="electricity", label="x", pan_id=1, network_key=Key(bytes(16))
    )
    assert DlmsKeys.from_paired(bare) is None


# ------------------------------------------------------------------ refusals, by outcome


def test_tampering_is_an_authentication_failure() -> None:
    data = bytearray(reference_ggc(PUSH))
    for pos in (len(data) - 1, len(data) - 20, 16):  # tag, ciphertext, invocation counter
        bad = bytearray(data)
        bad[pos] ^= 0x01
        with pytest.raises(MeterAuthError) as info:
            decode(bytes(bad), keys())
        assert info.value.outcome == "auth_failure"
        assert "does not verify" in info.value.reason
    with pytest.raises(MeterAuthError):
        decode(bytes(data), DlmsKeys(EK, bytes(16)))  # wrong authentication key
    with pytest.raises(MeterAuthError):
        decode(bytes(data), DlmsKeys(bytes(16), AK))  # wrong encryption key
    gmac = bytearray(
        cipher_apdu(
            PUSH, keys=keys(), system_title=TITLE, invocation_counter=1, security_control=0x10
        )
    )
    gmac[30] ^= 1
    with pytest.raises(MeterAuthError, match="GMAC"):
        decode(bytes(gmac), keys())


def test_key_errors() -> None:
    data = reference_ggc(PUSH)
    with pytest.raises(MeterKeyError) as info:
        decode(data)
    assert info.value.outcome == "no_key" and "no DLMS key" in info.value.reason
    with pytest.raises(MeterKeyError, match="not the configured 4D4D4D0000BC6100"):
        decode(data, keys(system_title=bytes.fromhex("4D4D4D0000BC6100")))
    assert decode(data, keys(system_title=TITLE))


def test_require_authentication() -> None:
    strict = keys(require_authentication=True)
    enc_only = cipher_apdu(
        PUSH, keys=keys(), system_title=TITLE, invocation_counter=1, security_control=0x20
    )
    with pytest.raises(MeterAuthError) as info:
        decode(enc_only, strict)
    assert info.value.outcome == "unauthenticated"
    assert decode(enc_only, keys())  # the default accepts it, marked not authenticated
    no_ak = DlmsKeys(EK, require_authentication=True)
    with pytest.raises(MeterKeyError, match="no authentication key"):
        decode(reference_ggc(PUSH), no_ak)
    d = decipher(reference_ggc(PUSH), DlmsKeys(EK))  # no AK, not strict: tag unchecked
    assert d.apdu == PUSH and not d.authenticated
    with pytest.raises(MeterAuthError, match="plain push refused") as info:
        decode(PUSH, strict)  # a plain push cannot be authenticated at all
    assert info.value.outcome == "unauthenticated"
    assert decode(PUSH, keys())  # without the requirement, plain pushes still decode


@pytest.mark.parametrize(
    ("hexdata", "reason"),
    [
        ("db07" + "00" * 7 + "05" + "3000000001", "system title of 7 octets"),
        ("db08" + "00" * 8 + "04" + "30000000", "no security header"),
        ("db08" + "00" * 8 + "05" + "3000000001" + "00", "1 octets after the ciphered content"),
        ("db08" + "00" * 8 + "80", "indefinite length"),
        ("db08" + "00" * 8 + "85" + "0000000005", "length of 5 octets"),
        ("db08" + "00" * 8 + "06" + "B000000001" + "00", "compressed"),
        ("db08" + "00" * 8 + "06" + "3300000001" + "00", "unknown security suite 3"),
        ("db08" + "00" * 8 + "10" + "3000000001" + "00" * 11, "shorter than its GCM tag"),
    ],
)
def test_malformed_ciphered_apdus(hexdata: str, reason: str) -> None:
    with pytest.raises(MeterDecodeError) as info:
        decode(bytes.fromhex(hexdata), keys())
    assert reason in info.value.reason


def test_keys_never_show() -> None:
    k = keys(system_title=TITLE)
    texts = [repr(k), str(k)]
    for data, kk in (
        (reference_ggc(PUSH)[:-1] + b"\x00", k),
        (reference_ggc(PUSH, title=bytes(8)), k),
        (reference_ggc(PUSH), DlmsKeys(EK, require_authentication=True)),
    ):
        with pytest.raises(MeterDecodeError) as info:
            decode(data, kk)
        texts += [str(info.value), repr(info.value), info.value.reason]
    d = decipher(reference_ggc(PUSH), k)
    texts.append(repr(d))
    for text in texts:
        for secret in (EK, AK):
            assert secret.hex() not in text.lower()
    assert "enc+auth" in repr(k) and "4D4D4D0000BC614E" in repr(k)
    assert PUSH.hex() not in repr(d).lower()  # nor the plaintext
    with pytest.raises(TypeError):
        pickle.dumps(k)


# ---------------------------------------------------------------- the dlms-cosem quirks


def test_quirk_encryption_only_has_no_tag() -> None:
    """Security control 0x20/0x21: no GCM tag, so dlms-cosem's to_plain_apdu (which splits
    off 12 tag octets and verifies them) fails. GCM's keystream is AES-CTR from J0 + 1 =
    IV || 00000002; we decrypt with that."""
    apdu = unwrap(bytes.fromhex(NOE["hex"])).apdu
    lib = GeneralGlobalCipher.from_bytes(apdu)
    with pytest.raises(Exception):  # noqa: B017  # DecryptionError (InvalidTag) inside
        lib.to_plain_apdu(NOE_KEY, bytes(16))
    d = decipher(apdu, DlmsKeys(NOE_KEY))
    assert d.security_control == 0x20 and d.apdu[:5] == bytes.fromhex("0f8006870e")
    # The keystream claim, independently: GCM-encrypt with cryptography, drop the tag,
    # and CTR from IV || 00000002 gives the plaintext back.
    iv = TITLE + (5).to_bytes(4, "big")
    enc = Cipher(algorithms.AES(EK), modes.GCM(iv)).encryptor()
    ct = enc.update(PUSH) + enc.finalize()
    ctr = Cipher(algorithms.AES(EK), modes.CTR(iv + b"\x00\x00\x00\x02")).decryptor()
    assert ctr.update(ct) + ctr.finalize() == PUSH
    suite1 = b"\xdb\x08" + TITLE + bytes((5 + len(ct), 0x21)) + (5).to_bytes(4, "big") + ct
    assert decipher(suite1, keys()).apdu == PUSH


def test_quirk_general_global_cipher_to_bytes_length() -> None:
    """GeneralGlobalCipher.to_bytes() writes the content length as one octet: 205 comes out
    as CD (which BER reads as "77 length octets follow"), and over 255 it raises. We write
    BER lengths (81 CD, 82 01 05) and read them back."""
    text = bytes(200)
    lib = GeneralGlobalCipher(
        system_title=TITLE,
        security_control=dlms_security.SecurityControlField.from_bytes(b"\x30"),
        invocation_counter=1,
        ciphered_text=text,
    )
    out = lib.to_bytes()
    assert out[10] == 205  # one octet, no 0x81 prefix
    with pytest.raises(MeterDecodeError):
        parse_ciphered(out)
    lib.ciphered_text = bytes(300)
    with pytest.raises(ValueError):
        lib.to_bytes()
    long_push = build_push(
        [((1, 0, c, 7, 0, 255), c, 0) for c in (1, 2, 21, 41, 61, 22, 42, 62, 31, 51, 71, 32)],
        timestamp=1_700_000_000,
        invoke_id=1,
    )
    assert len(long_push) > 255
    ours = cipher_apdu(long_push, keys=keys(), system_title=TITLE, invocation_counter=3)
    assert ours[10] == 0x82 and int.from_bytes(ours[11:13], "big") == len(ours) - 13
    assert decipher(ours, keys()).apdu == long_push
    assert encode_length(205) == b"\x81\xcd" and encode_length(127) == b"\x7f"
    assert read_length(b"\x82\x01\x05" + bytes(261), 0, "x") == (261, 3)


def test_quirk_date_time_as_data_choice() -> None:
    """Kaifa and older Kamstrup send the notification date-time as 09 0C + 12 octets.
    dlms-cosem's DataNotification.from_bytes then fails; we split the header ourselves."""
    apdu = bytes.fromhex("0f40000000090c07e1090c0217122aff80000002010600000528")
    with pytest.raises(ValueError, match=r"month must be in 1\.\.12"):
        DataNotification.from_bytes(apdu)
    push = decode(apdu)
    assert push.timestamp == 1505258322.0  # type: ignore[attr-defined]  # 2017-09-12 23:18:42


def test_quirk_utc_offset_zero_is_naive() -> None:
    """Deviation 0 parses as a naive datetime in dlms-cosem; we take it as UTC."""
    raw = bytes.fromhex("07e80101010d000000000000")  # 2024-01-01 13:00:00, deviation 0
    dt, _ = dlms_time.datetime_from_bytes(raw)
    assert dt.tzinfo is None
    push = decode(bytes.fromhex("0f00000001") + b"\x0c" + raw + bytes.fromhex("0200"))
    assert push.timestamp == dt.replace(tzinfo=UTC).timestamp()  # type: ignore[attr-defined]


def test_quirk_bit_string_length_counts_bits() -> None:
    """A-XDR bit-string lengths count bits; dlms-cosem reads that many octets. A 16-bit
    status word (04 10 + 2 octets) would eat 16 octets there."""
    body = "0201020209060000600500ff04108001"  # {0-0:96.5.0.255, bits 8001}
    push = decode(bytes.fromhex("0f0000000100") + bytes.fromhex(body))
    (r,) = push.readings  # type: ignore[attr-defined]
    assert (r.quantity, r.raw) == ("status_code", 0x8001)


# ------------------------------------------------------------------------------- fuzzing


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.integers(0, 255))
def test_any_ciphered_bytes_raise_only_meter_decode_error(data: bytes, sc: int) -> None:
    for k in (keys(), DlmsKeys(EK), keys(require_authentication=True)):
        for candidate in (
            b"\xdb" + data,
            b"\xdb\x08" + TITLE + encode_length(len(data) + 5) + bytes((sc,)) + b"\0\0\0\1" + data,
        ):
            with contextlib.suppress(MeterDecodeError):
                decode(candidate, k)
