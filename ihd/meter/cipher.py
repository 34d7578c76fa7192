"""general-glo-ciphering (tag 0xDB): the DLMS keys, and AES-GCM both ways.

Layout (Green Book 9.2.7.2.4): ``DB``, system title as an A-XDR octet string (``08`` + 8
octets: a 3-letter manufacturer id and 5 octets of serial), then the ciphered content
as an octet string with a BER length (``81 F8``, ``82 01 55`` on real meters): security
control (1), invocation counter (4, big-endian), then the ciphertext and, when the
security control says "authenticated", a 12-octet GCM tag.

Security control: bits 0-3 security suite (0 and 1: AES-128-GCM; 2: AES-256-GCM), bit 4
authentication, bit 5 encryption, bit 6 broadcast key, bit 7 compression (refused).
The IV is system title || invocation counter. The additional authenticated data is
security control || authentication key, and for authentication-only also the plaintext.

Encryption-only pushes (``0x20`` from the Netz NÖ sample, ``0x21`` from a Kaifa MA309M)
carry no tag, so dlms-cosem's ``to_plain_apdu`` (which always splits off and checks 12
tag octets) fails on them. GCM encryption is AES in counter mode whose first counter
block is J0 + 1 = IV || ``00000002``; we decrypt those with ``modes.CTR`` directly.
Authenticated and encrypted pushes go through dlms-cosem's ``security.decrypt``.

Policy, per push (see :class:`DlmsKeys`):

* authenticated, and we have the authentication key: the tag must verify, else
  :class:`MeterAuthError` ``auth_failure``; ``Deciphered.authenticated`` is True;
* authenticated but no authentication key configured (HAN users are often given only
  the encryption key): decrypted without checking the tag, ``authenticated`` False;
* encryption only: decrypted, ``authenticated`` False;
* ``require_authentication=True`` refuses every push that ends with ``authenticated``
  False (:class:`MeterAuthError` ``unauthenticated``, or :class:`MeterKeyError` when the
  push has a tag but we have no key to check it); ``decode_push`` then refuses plain
  (unciphered) pushes from that meter too.

Keys never appear in ``repr``, ``str`` or any error text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from dlms_cosem import security as dlms_security
from dlms_cosem.exceptions import DecryptionError

from ihd.meter.ber import encode_length, read_length
from ihd.meter.errors import MeterAuthError, MeterDecodeError, MeterKeyError

__all__ = [
    "SC_AUTHENTICATED",
    "SC_COMPRESSED",
    "SC_ENCRYPTED",
    "TAG_GENERAL_GLO_CIPHERING",
    "TAG_LENGTH",
    "Ciphered",
    "Deciphered",
    "DlmsKeys",
    "cipher_apdu",
    "decipher",
    "parse_ciphered",
]

TAG_GENERAL_GLO_CIPHERING = 0xDB
TAG_LENGTH = 12  # DLMS truncates the GCM tag to 96 bits
SYSTEM_TITLE_LEN = 8
SC_AUTHENTICATED = 0x10
SC_ENCRYPTED = 0x20
SC_BROADCAST = 0x40
SC_COMPRESSED = 0x80
_KEY_LENGTHS = {0: 16, 1: 16, 2: 32}  # security suite -> AES key octets
_CTR_START = b"\x00\x00\x00\x02"  # inc32(J0) for a 96-bit IV


class _HasValue(Protocol):
    @property
    def value(self) -> bytes: ...


KeyLike = bytes | bytearray | _HasValue
"""Raw key octets, or an object with ``.value`` such as ``ihd.smwap.security.Key``."""


def _key_octets(key: KeyLike, name: str) -> bytes:
    raw = key if isinstance(key, bytes | bytearray) else getattr(key, "value", None)
    if not isinstance(raw, bytes | bytearray):
        raise TypeError(f"{name} must be bytes or a Key, not {type(key).__name__}")
    if len(raw) not in (16, 32):
        raise ValueError(f"{name} must be 16 or 32 octets, not {len(raw)}")
    return bytes(raw)


class DlmsKeys:
    """The DLMS keys of one meter (from pairing, or from config).

    ``system_title``, when given (8 octets), must match the push's: a push from another
    system title is refused with :class:`MeterKeyError`. ``repr`` shows which keys are
    present, never their values; pickling is refused.
    """

    __slots__ = ("_ak", "_ek", "require_authentication", "system_title")

    _ek: bytes
    _ak: bytes | None
    system_title: bytes | None
    require_authentication: bool

    def __init__(
        self,
        encryption_key: KeyLike,
        authentication_key: KeyLike | None = None,
        *,
        system_title: bytes | None = None,
        require_authentication: bool = False,
    ) -> None:
        self._ek = _key_octets(encryption_key, "encryption_key")
        self._ak = (
            None
            if authentication_key is None
            else _key_octets(authentication_key, "authentication_key")
        )
        if system_title is not None:
            system_title = bytes(system_title)
            if len(system_title) != SYSTEM_TITLE_LEN:
                raise ValueError(f"system_title must be 8 octets, not {len(system_title)}")
        self.system_title = system_title
        self.require_authentication = bool(require_authentication)

    @classmethod
    def from_paired(cls, meter: Any, *, require_authentication: bool = False) -> DlmsKeys | None:
        """Keys from an ``ihd.smwap.keys.PairedMeter`` (its ``dlms_system_title``,
        ``dlms_encryption_key``, ``dlms_authentication_key``); None if it has no DLMS
        encryption key."""
        ek = getattr(meter, "dlms_encryption_key", None)
        if ek is None:
            return None
        return cls(
            ek,
            getattr(meter, "dlms_authentication_key", None),
            system_title=getattr(meter, "dlms_system_title", None),
            require_authentication=require_authentication,
        )

    @property
    def has_authentication_key(self) -> bool:
        return self._ak is not None

    def __repr__(self) -> str:
        title = "any" if self.system_title is None else self.system_title.hex().upper()
        keys = "enc+auth" if self._ak is not None else "enc"
        strict = ", require_authentication" if self.require_authentication else ""
        return f"DlmsKeys(system_title={title}, keys={keys}{strict})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("DlmsKeys cannot be pickled: keep keys in the key file")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DlmsKeys):
            return NotImplemented
        return (
            self._ek == other._ek
            and self._ak == other._ak
            and self.system_title == other.system_title
            and self.require_authentication == other.require_authentication
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-free but holds secrets: no hashing


@dataclass(frozen=True, slots=True)
class Ciphered:
    """A parsed general-glo-ciphering APDU, not yet deciphered."""

    system_title: bytes
    security_control: int
    invocation_counter: int
    payload: bytes  # ciphertext (+ tag when authenticated)

    @property
    def suite(self) -> int:
        return self.security_control & 0x0F

    @property
    def authenticated(self) -> bool:
        return bool(self.security_control & SC_AUTHENTICATED)

    @property
    def encrypted(self) -> bool:
        return bool(self.security_control & SC_ENCRYPTED)


@dataclass(frozen=True, slots=True, repr=False)
class Deciphered:
    """The plaintext APDU and the security facts about it. ``repr`` leaves out the
    plaintext."""

    apdu: bytes
    system_title: bytes
    invocation_counter: int
    security_control: int
    authenticated: bool  # True only if a GCM tag verified with our authentication key

    def __repr__(self) -> str:
        return (
            f"Deciphered(system_title={self.system_title.hex().upper()}, "
            f"invocation_counter={self.invocation_counter}, "
            f"security_control=0x{self.security_control:02X}, "
            f"authenticated={self.authenticated}, {len(self.apdu)} octets)"
        )


def parse_ciphered(apdu: bytes) -> Ciphered:
    """Split a general-glo-ciphering APDU into its clear fields. Raises MeterDecodeError."""
    if len(apdu) < 2 or apdu[0] != TAG_GENERAL_GLO_CIPHERING:
        raise MeterDecodeError("not a general-glo-ciphering APDU")
    n, pos = read_length(apdu, 1, "general-glo-ciphering system title")
    if n != SYSTEM_TITLE_LEN:
        raise MeterDecodeError(f"general-glo-ciphering: system title of {n} octets, not 8")
    title = bytes(apdu[pos : pos + n])
    n, pos = read_length(apdu, pos + n, "general-glo-ciphering content")
    if pos + n != len(apdu):
        raise MeterDecodeError(
            f"general-glo-ciphering: {len(apdu) - pos - n} octets after the ciphered content"
        )
    if n < 5:
        raise MeterDecodeError("general-glo-ciphering: no security header")
    sc = apdu[pos]
    ic = int.from_bytes(apdu[pos + 1 : pos + 5], "big")
    return Ciphered(title, sc, ic, bytes(apdu[pos + 5 : pos + n]))


def _ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    # AES-GCM's encryption is CTR starting at inc32(J0); without a tag this is all of it.
    ctx = Cipher(algorithms.AES(key), modes.CTR(iv + _CTR_START)).encryptor()
    return ctx.update(data) + ctx.finalize()


def _gmac_ok(key: bytes, iv: bytes, aad: bytes, tag: bytes) -> bool:
    ctx = Cipher(algorithms.AES(key), modes.GCM(iv, tag, min_tag_length=TAG_LENGTH)).decryptor()
    ctx.authenticate_additional_data(aad)
    try:
        ctx.finalize()
    except InvalidTag:
        return False
    return True


def _check_suite(c: Ciphered, keys: DlmsKeys) -> None:
    if c.security_control & SC_COMPRESSED:
        raise MeterDecodeError("general-glo-ciphering: compressed APDUs are not supported")
    need = _KEY_LENGTHS.get(c.suite)
    if need is None:
        raise MeterDecodeError(f"general-glo-ciphering: unknown security suite {c.suite}")
    if len(keys._ek) != need or (keys._ak is not None and len(keys._ak) != need):
        raise MeterKeyError(
            f"security suite {c.suite} needs {need}-octet keys; the configured keys differ"
        )


def decipher(apdu: bytes, keys: DlmsKeys | None) -> Deciphered:
    """Decipher a general-glo-ciphering APDU with ``keys`` (see the module docstring for
    the policy). Raises MeterDecodeError and its subclasses."""
    c = parse_ciphered(apdu)
    title = c.system_title.hex().upper()
    if keys is None:
        raise MeterKeyError("ciphered APDU: no DLMS key configured")
    if keys.system_title is not None and keys.system_title != c.system_title:
        raise MeterKeyError(
            f"ciphered APDU from system title {title}, "
            f"not the configured {keys.system_title.hex().upper()}"
        )
    _check_suite(c, keys)
    iv = c.system_title + c.invocation_counter.to_bytes(4, "big")
    sc = c.security_control
    ak = keys._ak
    if c.authenticated:
        if len(c.payload) < TAG_LENGTH:
            raise MeterDecodeError("general-glo-ciphering: shorter than its GCM tag")
        body, tag = c.payload[:-TAG_LENGTH], c.payload[-TAG_LENGTH:]
        if ak is None:
            if keys.require_authentication:
                raise MeterKeyError(
                    "authenticated push, but no authentication key is configured to check it"
                )
            plain = _ctr(keys._ek, iv, body) if c.encrypted else body
            return Deciphered(plain, c.system_title, c.invocation_counter, sc, False)
        if c.encrypted:
            try:
                plain = dlms_security.decrypt(
                    security_control=dlms_security.SecurityControlField.from_bytes(bytes((sc,))),
                    system_title=c.system_title,
                    invocation_counter=c.invocation_counter,
                    key=keys._ek,
                    cipher_text=c.payload,
                    auth_key=ak,
                )
            except DecryptionError:
                raise MeterAuthError(
                    f"GCM tag does not verify (system title {title}, "
                    f"invocation counter {c.invocation_counter})"
                ) from None
            return Deciphered(bytes(plain), c.system_title, c.invocation_counter, sc, True)
        if not _gmac_ok(keys._ek, iv, bytes((sc,)) + ak + body, tag):
            raise MeterAuthError(
                f"GMAC tag does not verify (system title {title}, "
                f"invocation counter {c.invocation_counter})"
            )
        return Deciphered(body, c.system_title, c.invocation_counter, sc, True)
    if keys.require_authentication:
        raise MeterAuthError(
            f"push from {title} is not authenticated (security control 0x{sc:02X})",
            "unauthenticated",
        )
    plain = _ctr(keys._ek, iv, c.payload) if c.encrypted else c.payload
    return Deciphered(plain, c.system_title, c.invocation_counter, sc, False)


def cipher_apdu(
    apdu: bytes,
    *,
    keys: DlmsKeys,
    system_title: bytes,
    invocation_counter: int,
    security_control: int = SC_AUTHENTICATED | SC_ENCRYPTED,
) -> bytes:
    """Wrap ``apdu`` in general-glo-ciphering as a meter would (for the simulator, tests
    and benchmarks), with BER lengths that are right at any size."""
    if len(system_title) != SYSTEM_TITLE_LEN:
        raise ValueError("system_title must be 8 octets")
    if not 0 <= invocation_counter <= 0xFFFFFFFF:
        raise ValueError("invocation_counter must fit 32 bits")
    if security_control & SC_COMPRESSED or (security_control & 0x0F) not in _KEY_LENGTHS:
        raise ValueError(f"security control 0x{security_control:02X} is not supported")
    iv = bytes(system_title) + invocation_counter.to_bytes(4, "big")
    ek, ak = keys._ek, keys._ak
    auth = bool(security_control & SC_AUTHENTICATED)
    enc = bool(security_control & SC_ENCRYPTED)
    if auth and ak is None:
        raise ValueError("an authenticated APDU needs an authentication key")
    if auth and enc:
        assert ak is not None
        payload: bytes = dlms_security.encrypt(
            security_control=dlms_security.SecurityControlField.from_bytes(
                bytes((security_control,))
            ),
            system_title=bytes(system_title),
            invocation_counter=invocation_counter,
            key=ek,
            plain_text=bytes(apdu),
            auth_key=ak,
        )
    elif auth:
        assert ak is not None
        ctx = Cipher(algorithms.AES(ek), modes.GCM(iv)).encryptor()
        ctx.authenticate_additional_data(bytes((security_control,)) + ak + bytes(apdu))
        ctx.finalize()
        payload = bytes(apdu) + ctx.tag[:TAG_LENGTH]
    elif enc:
        payload = _ctr(ek, iv, bytes(apdu))
    else:
        payload = bytes(apdu)
    content = bytes((security_control,)) + invocation_counter.to_bytes(4, "big") + payload
    return (
        bytes((TAG_GENERAL_GLO_CIPHERING, SYSTEM_TITLE_LEN))
        + bytes(system_title)
        + encode_length(len(content))
        + content
    )
