"""IEEE 802.15.4 frame security (CCM*) for SMWAP frames, sans I/O.

A received secured frame goes through four steps, in this order:

1. :func:`check_level` against the :class:`SecurityPolicy` (refuses unsecured or weak frames
   before any work is done);
2. :meth:`KeyTable.require` (or :meth:`KeyTable.lookup`) finds the key for the frame's key
   identifier and source;
3. the replay check (:mod:`ihd.smwap.replay`) on the frame counter, before decrypting;
4. :func:`unsecure` verifies the MIC and decrypts; only then does the caller ``accept`` the
   counter in the replay window.

Why CCM* by hand around ``cryptography``: ``cryptography`` does AES-CCM, and CCM* with a MIC
of 4, 8 or 16 octets *is* CCM, but 802.15.4 decides which octets are authenticated (``a``) and
which are encrypted (``m``) per security level and frame type, builds the 13-octet nonce from
the source EUI-64, frame counter and level, and has a level with no MIC at all (level 4, plain
AES-CTR) that ``AESCCM`` refuses. That framing lives here; the block cipher work does not.

The rules implemented (IEEE 802.15.4-2006/2011/2015, section 9.3 / Annex C; checked against the
Annex C.2.1-C.2.3 vectors and computed vectors in ``tests/data/smwap_vectors.json``):

* **Nonce** (13 octets): source EUI-64 (most significant octet first), frame counter (most
  significant first), security level. The EUI-64 is always the originator's extended address,
  even when the frame carries a short address: the caller maps short addresses to EUI-64s.
* **Levels 1-3** (MIC only): ``a`` is the whole frame before the MIC (header, header IEs,
  payload IEs and MAC payload, all in clear); the MIC follows in clear.
* **Level 4** (encryption only): payload IEs and MAC payload are AES-CTR encrypted with counter
  blocks ``0x01 | nonce | i`` (i from 1); there is no MIC, so tampering cannot be detected. The
  default policy never accepts it.
* **Levels 5-7**: ``a`` is the header (MHR, auxiliary security header, header IEs and the
  header termination IE); ``m`` (payload IEs and MAC payload) is encrypted and the encrypted MIC
  follows: the frame is ``a | C | MIC``.
* **MAC command frames of frame version 0/1 (2003/2006/2011)**: the Command ID octet stays in
  clear and belongs to ``a`` (Annex C.2.3). In 2015-format (version 2) frames the Command ID is
  part of the MAC payload after any payload IEs, so it is encrypted with the rest. This is the
  reading of 802.15.4-2015 used here; no vector covers a secured 2015 command frame.
* **Not supported** (refused with the ``unsupported`` counter): frame counter suppression and
  ASN in nonce (TSCH), since without a frame counter the nonce is undefined outside TSCH.

**Policy rule** (:func:`check_level`). Security levels are compared as 802.15.4 compares them
(2006, 7.5.8.2.8): level ``L`` satisfies minimum ``min_level`` iff

    MIC_LEN[L] >= MIC_LEN[min_level]  and  (is_encrypted(L) or not is_encrypted(min_level))

An unsecured frame counts as level 0 and so passes only ``min_level=0``. The default minimum
is 5 (ENC-MIC-32, what SMWAP-like frames use), which accepts 5, 6 and 7 and refuses 1-4: level 4
has no MIC, so it is never accepted when the minimum has one. ``min_level=4`` accepts 4-7;
``min_level=1`` accepts 1-3 and 5-7 but not 4.

**Diagnostics.** Every refusal raises :class:`SecurityError` with a ``counter``: the suffix of
the diagnostics counter the receiver bumps (``smwap.<counter>``). Counters used here:
``downgrade``, ``unknown_key``, ``unsupported``, ``mic_failure``, ``bad_frame``; the replay
module adds ``replay`` and ``duplicate``.

**Secrets.** Keys are :class:`Key` objects whose ``repr``/``str`` never show the value (not
even a hash prefix), which refuse pickling, and which are never put into exception messages.
Neither is plaintext. Nothing here logs.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from operator import attrgetter
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from ihd.smwap.mac import AuxSecurityHeader, FrameType, FrameVersion, MacFrame, PayloadIE

__all__ = [
    "DEFAULT_POLICY",
    "MIC_LEN",
    "Key",
    "KeyTable",
    "SecurityError",
    "SecurityPolicy",
    "check_level",
    "is_encrypted",
    "key_id",
    "level_satisfies",
    "nonce",
    "secure",
    "unsecure",
]

MIC_LEN: dict[int, int] = {0: 0, 1: 4, 2: 8, 3: 16, 4: 0, 5: 4, 6: 8, 7: 16}
"""MIC octets by security level."""

_MIC = (0, 4, 8, 16, 0, 4, 8, 16)  # tuple index is faster than dict lookup on the hot path
_PT_OCTETS = b"\x00\xf8"  # payload termination IE (group 0xF, length 0)
_MAX_COUNTER = 0xFFFFFFFF


def is_encrypted(level: int) -> bool:
    """True for levels 4-7 (payload encrypted), False for 0-3."""
    if not 0 <= level <= 7:
        raise ValueError(f"security level {level} not in 0..7")
    return level >= 4


# --- errors --------------------------------------------------------------------------------


class SecurityError(Exception):
    """A frame refused by the security layer.

    ``reason`` is for people (it never holds key octets or plaintext); ``counter`` is the
    diagnostics counter suffix (``mic_failure``, ``replay``, ...), see the module docstring.
    """

    reason: str
    counter: str

    def __init__(self, reason: str, counter: str) -> None:
        super().__init__(f"{reason} ({counter})")
        self.reason = reason
        self.counter = counter

    def __reduce__(self) -> tuple[type[SecurityError], tuple[str, str]]:
        return (type(self), (self.reason, self.counter))


# --- keys ----------------------------------------------------------------------------------


class Key:
    """A 128-bit AES key that does not show itself.

    ``repr``/``str`` give ``Key(<16 octets>)``; ``.value`` gives the octets to code that needs
    them. Equality compares values in constant time. Pickling is refused so a key cannot leak
    into a queue, cache or crash dump by accident; store keys with :mod:`ihd.smwap.keys`.
    The ``AESCCM`` object for each MIC length is made once and kept (reuse is ~40 % faster).
    """

    __slots__ = ("_ccm", "_value")

    _value: bytes
    _ccm: dict[int, AESCCM]

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"a key is made from bytes, not {type(value).__name__}")
        value = bytes(value)
        if len(value) != 16:
            raise ValueError(f"a key is 16 octets, not {len(value)}")
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "_ccm", {})

    @classmethod
    def from_hex(cls, text: str) -> Key:
        """A key from 32 hex digits (spaces, ':' and '-' allowed between them). The error
        message never repeats the input."""
        if not isinstance(text, str):
            raise TypeError(f"from_hex needs a str, not {type(text).__name__}")
        digits = "".join(text.split()).replace(":", "").replace("-", "")
        if len(digits) != 32:
            raise ValueError("a key needs 32 hex digits") from None
        try:
            value = bytes.fromhex(digits)
        except ValueError:
            raise ValueError("a key needs 32 hex digits") from None
        return cls(value)

    @property
    def value(self) -> bytes:
        """The 16 key octets."""
        return self._value

    def ccm(self, mic_len: int) -> AESCCM:
        """The cached ``AESCCM`` for this key and a MIC length of 4, 8 or 16."""
        c = self._ccm.get(mic_len)
        if c is None:
            c = self._ccm[mic_len] = AESCCM(self._value, tag_length=mic_len)
        return c

    def __repr__(self) -> str:
        return "Key(<16 octets>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash((Key, self._value))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Key is immutable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("Key objects cannot be pickled; keep keys in the key file")

    def __copy__(self) -> Key:
        return self

    def __deepcopy__(self, memo: object) -> Key:
        return self


def key_id(aux: AuxSecurityHeader) -> str:
    """A short, public text name for the frame's key identifier (no secrets): ``"0"`` for an
    implicit key, ``"1:05"`` for key index 5 (mode 1), ``"2:AABBCCDD:05"`` and
    ``"3:0011223344556677:05"`` for modes 2/3 (key source, index). Used by the key table and
    in replay-protection state keys."""
    idx = aux.key_index
    if idx is None:
        return "0"
    src = aux.key_source
    if not src:
        return f"1:{idx:02X}"
    return f"{2 if len(src) == 4 else 3}:{src.hex().upper()}:{idx:02X}"


class KeyTable:
    """Keys by key identifier, optionally bound to one source.

    * key identifier mode 0 (implicit key): :meth:`add_implicit`;
    * mode 1 (key index, with macDefaultKeySource): :meth:`add_index`;
    * modes 2/3 (4- or 8-octet key source and index): :meth:`add_source`.

    Each ``add_*`` takes ``src_ext=`` to bind the key to one source EUI-64 (e.g. an
    electricity and a gas meter both using key index 1 with different keys); without it the
    key is a default for every source. :meth:`lookup` tries the source's own key first, then
    the default. ``repr`` shows only the identifiers.
    """

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: dict[tuple[int | None, str], Key] = {}

    def add_implicit(self, key: Key, *, src_ext: int | None = None) -> None:
        """The key for key identifier mode 0 (per source, or the default)."""
        self._add(src_ext, "0", key)

    def add_index(self, key_index: int, key: Key, *, src_ext: int | None = None) -> None:
        """The key for key identifier mode 1 with this key index."""
        if not 0 <= key_index <= 0xFF:
            raise ValueError(f"key index {key_index} not in 0..255")
        self._add(src_ext, key_id(AuxSecurityHeader(5, 0, key_index)), key)

    def add_source(
        self, key_source: bytes, key_index: int, key: Key, *, src_ext: int | None = None
    ) -> None:
        """The key for key identifier mode 2 (4-octet source) or 3 (8-octet source)."""
        if len(key_source) not in (4, 8):
            raise ValueError(f"a key source is 4 or 8 octets, not {len(key_source)}")
        if not 0 <= key_index <= 0xFF:
            raise ValueError(f"key index {key_index} not in 0..255")
        self._add(src_ext, key_id(AuxSecurityHeader(5, 0, key_index, bytes(key_source))), key)

    def _add(self, src_ext: int | None, kid: str, key: Key) -> None:
        if not isinstance(key, Key):
            raise TypeError(f"expected a Key, not {type(key).__name__}")
        if src_ext is not None and not 0 <= src_ext <= 0xFFFF_FFFF_FFFF_FFFF:
            raise ValueError("src_ext is not a 64-bit EUI-64")
        self._keys[(src_ext, kid)] = key

    def remove_source(self, src_ext: int) -> int:
        """Drop every key bound to this source (unpairing); returns how many."""
        gone = [k for k in self._keys if k[0] == src_ext]
        for k in gone:
            del self._keys[k]
        return len(gone)

    def lookup(self, aux: AuxSecurityHeader, src_ext: int) -> Key | None:
        """The key for this frame: the source's own key, else the default, else None."""
        kid = key_id(aux)
        keys = self._keys
        return keys.get((src_ext, kid)) or keys.get((None, kid))

    def require(self, aux: AuxSecurityHeader, src_ext: int) -> Key:
        """Like :meth:`lookup`, but raises ``SecurityError(counter="unknown_key")``."""
        key = self.lookup(aux, src_ext)
        if key is None:
            raise SecurityError(
                f"no key for key identifier {key_id(aux)} from {src_ext:016X}", "unknown_key"
            )
        return key

    def identifiers(self) -> Iterator[tuple[int | None, str]]:
        """(source EUI-64 or None, key identifier name) of every key held."""
        return iter(sorted(self._keys, key=lambda k: (k[0] is not None, k[0] or 0, k[1])))

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        ids = ", ".join(
            f"{'*' if s is None else f'{s:016X}'}/{kid}" for s, kid in self.identifiers()
        )
        return f"KeyTable([{ids}])"

    def __reduce__(self) -> NoReturn:
        raise TypeError("KeyTable objects cannot be pickled; keep keys in the key file")


# --- policy --------------------------------------------------------------------------------


def level_satisfies(level: int, min_level: int) -> bool:
    """The 802.15.4 comparison: ``level`` is at least as strong as ``min_level`` (MIC at least
    as long, and encrypted if the minimum is). Level 0 means "unsecured"."""
    return _MIC[level] >= _MIC[min_level] and (level >= 4 or min_level < 4)


@dataclass(frozen=True, slots=True)
class SecurityPolicy:
    """What a receiver accepts. ``min_level=5`` (ENC-MIC-32) by default: levels 5, 6, 7.

    See the module docstring for the rule. Level 4 (no MIC) is never accepted when the minimum
    has a MIC (``min_level`` 1-3 or 5-7). ``min_level=0`` accepts unsecured frames too (only
    for the simulator and tests).
    """

    min_level: int = 5

    def __post_init__(self) -> None:
        if not 0 <= self.min_level <= 7:
            raise ValueError(f"min_level {self.min_level} not in 0..7")

    def accepts(self, level: int) -> bool:
        """True if a frame secured at ``level`` (0 = unsecured) passes this policy."""
        return level_satisfies(level, self.min_level)


DEFAULT_POLICY = SecurityPolicy()


def check_level(aux: AuxSecurityHeader | None, policy: SecurityPolicy = DEFAULT_POLICY) -> None:
    """Raise ``SecurityError(counter="downgrade")`` if the frame (``aux``, None for an
    unsecured frame) is weaker than the policy allows."""
    level = 0 if aux is None else aux.level
    if not level_satisfies(level, policy.min_level):
        what = "unsecured frame" if aux is None else f"security level {level}"
        raise SecurityError(f"{what} below the minimum level {policy.min_level}", "downgrade")


# --- CCM* ----------------------------------------------------------------------------------


def nonce(src_ext: int, frame_counter: int, level: int) -> bytes:
    """The 13-octet CCM* nonce: EUI-64 (big-endian), frame counter (big-endian), level."""
    if not 0 <= level <= 7:
        raise ValueError(f"security level {level} not in 0..7")
    return src_ext.to_bytes(8, "big") + frame_counter.to_bytes(4, "big") + bytes((level,))


def _ctr(key: Key, n: bytes, data: bytes) -> bytes:
    """CCM* with M=0: AES-CTR with counter blocks 0x01 | nonce | i, i from 1."""
    enc = Cipher(algorithms.AES(key.value), modes.CTR(b"\x01" + n + b"\x00\x01")).encryptor()
    return enc.update(data) + enc.finalize()


def _clear_prefix(frame: MacFrame) -> int:
    """Octets at the start of the MAC payload that stay in ``a``: the Command ID of a
    2003/2006/2011 MAC command frame."""
    return int(frame.frame_type == FrameType.COMMAND and frame.version < FrameVersion.V2015)


def _nonce_for(aux: AuxSecurityHeader, src_ext: int) -> bytes:
    if aux.asn_in_nonce:
        raise SecurityError("ASN in nonce (TSCH) is not supported", "unsupported")
    if aux.frame_counter is None:
        raise SecurityError("frame counter suppression is not supported", "unsupported")
    if not 0 <= src_ext <= 0xFFFF_FFFF_FFFF_FFFF:
        raise ValueError("src_ext is not a 64-bit EUI-64")
    return nonce(src_ext, aux.frame_counter, aux.level)


def secure(frame: MacFrame, key: Key, *, src_ext: int) -> bytes:
    """Secure a plaintext frame: the MPDU without FCS, ready for :func:`~ihd.smwap.fcs`.

    ``frame.aux`` gives the level, key identifier and frame counter; ``payload_ies`` and
    ``payload`` are plaintext. ``src_ext`` is the sender's EUI-64 for the nonce. Raises
    ``ValueError`` for frames that cannot be secured (no ``aux``, which also covers level 0;
    a counter-suppressed or ASN header; a 2006 command without a Command ID; an already
    secured frame).
    """
    aux = frame.aux
    if aux is None:
        raise ValueError("secure() needs a frame with an auxiliary security header (level 1-7)")
    if frame.secured_payload_ies:
        raise ValueError("frame is already secured (secured_payload_ies is set)")
    try:
        n = _nonce_for(aux, src_ext)
    except SecurityError as e:
        raise ValueError(e.reason) from None
    level, mic_len = aux.level, _MIC[aux.level]

    body = b"".join(ie.to_bytes() for ie in frame.payload_ies)
    if frame.payload_ies and frame.payload:
        body += _PT_OCTETS
    clear = _clear_prefix(frame)
    if clear and not frame.payload:
        raise ValueError("a MAC command frame needs a Command ID")
    body += frame.payload
    # Build the header through the MAC builder (terminators, PAN rules) with a placeholder
    # secured payload of the right length, then cut it off.
    sized = replace(
        frame,
        payload_ies=(),
        payload=bytes(len(body) + mic_len),
        secured_payload_ies=bool(frame.payload_ies),
    )
    built = sized.to_bytes()
    header = built[: len(built) - len(sized.payload)]

    if level < 4:  # MIC only: everything is authenticated and sent in clear
        a = header + body
        return a + key.ccm(mic_len).encrypt(n, b"", a)
    a = header + body[:clear]
    m = body[clear:]
    if level == 4:
        return a + _ctr(key, n, m)
    return a + key.ccm(mic_len).encrypt(n, m, a)


def _bad(reason: str) -> NoReturn:
    raise SecurityError(reason, "bad_frame") from None


def unsecure(raw: bytes, frame: MacFrame, key: Key, *, src_ext: int) -> MacFrame:
    """Verify and decrypt a secured frame.

    ``raw`` is the MPDU without FCS and ``frame`` is ``parse_mpdu_unchecked(raw)``; ``src_ext``
    is the sender's EUI-64 (from the frame, or mapped from its short address). Returns the
    plaintext frame: ``payload_ies`` parsed, ``payload`` in clear, ``aux`` kept, and
    ``secured_payload_ies`` False, so that ``secure(result, key, ...) == raw``.

    Raises :class:`SecurityError`: ``mic_failure`` (wrong key or tampered frame),
    ``bad_frame`` (plaintext that does not parse, or a command frame without a Command ID),
    ``unsupported`` (counter suppression, ASN in nonce), ``downgrade`` (not secured). Apply
    :func:`check_level` first: this function will decrypt level 4, which has no MIC.
    """
    aux = frame.aux
    if aux is None:
        raise SecurityError("frame is not secured", "downgrade")
    secured = frame.payload
    hlen = len(raw) - len(secured)
    if hlen < 0 or frame.payload_ies or raw[hlen:] != secured:
        raise ValueError("frame is not parse_mpdu_unchecked(raw)")
    n = _nonce_for(aux, src_ext)
    level, mic_len = aux.level, _MIC[aux.level]
    clear = _clear_prefix(frame)
    if len(secured) < mic_len + clear:
        _bad("MAC command frame without a Command ID")

    if level < 4:
        try:
            key.ccm(mic_len).decrypt(n, raw[len(raw) - mic_len :], raw[: len(raw) - mic_len])
        except InvalidTag:
            raise SecurityError("MIC check failed", "mic_failure") from None
        body = secured[: len(secured) - mic_len]
    else:
        cut = hlen + clear
        if level == 4:
            m = _ctr(key, n, raw[cut:])
        else:
            try:
                m = key.ccm(mic_len).decrypt(n, raw[cut:], raw[:cut])
            except InvalidTag:
                raise SecurityError("MIC check failed", "mic_failure") from None
        body = secured[:clear] + m

    payload_ies: tuple[PayloadIE, ...] = ()
    if frame.secured_payload_ies:
        payload_ies, body = _split_payload_ies(body)
    return _plaintext(frame, payload_ies, body)


# dataclasses.replace() costs ~4 us per call, more than the AES work; copying the fields by
# position costs ~2 us. The positions are read from the dataclass, so new fields are fine.
_INIT_FIELDS = [f for f in fields(MacFrame) if f.init]
_GET_FIELDS = attrgetter(*(f.name for f in _INIT_FIELDS))
_POS = {f.name: i for i, f in enumerate(_INIT_FIELDS)}
_I_PIES, _I_PAYLOAD, _I_SECURED = (
    _POS["payload_ies"],
    _POS["payload"],
    _POS["secured_payload_ies"],
)
_BY_POSITION = not any(f.kw_only for f in _INIT_FIELDS)


def _plaintext(frame: MacFrame, payload_ies: tuple[PayloadIE, ...], payload: bytes) -> MacFrame:
    """``replace(frame, payload_ies=..., payload=..., secured_payload_ies=False)``, faster."""
    if not _BY_POSITION:
        return replace(frame, payload_ies=payload_ies, payload=payload, secured_payload_ies=False)
    args = list(_GET_FIELDS(frame))
    args[_I_PIES] = payload_ies
    args[_I_PAYLOAD] = payload
    args[_I_SECURED] = False
    return MacFrame(*args)


def _split_payload_ies(body: bytes) -> tuple[tuple[PayloadIE, ...], bytes]:
    """Payload IEs up to the payload termination IE (consumed) or the end, and the rest.
    Same rules as the MAC parser uses for unsecured frames."""
    ies: list[PayloadIE] = []
    pos, n = 0, len(body)
    while pos < n:
        if pos + 2 > n:
            _bad("truncated payload IE descriptor after decryption")
        d = body[pos] | body[pos + 1] << 8
        if not d & 0x8000:
            _bad("header IE among payload IEs after decryption")
        length, gid = d & 0x7FF, (d >> 11) & 0xF
        if gid == 0xF:
            if length:
                _bad("payload termination IE with content after decryption")
            return tuple(ies), body[pos + 2 :]
        end = pos + 2 + length
        if end > n:
            _bad("truncated payload IE after decryption")
        ies.append(PayloadIE(gid, body[pos + 2 : end]))
        pos = end
    return tuple(ies), b""
