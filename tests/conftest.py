"""Shared test helpers: a meter push as it arrives from a radio, and waiting on threads."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ihd.meter.dlms import PushValue, build_push
from ihd.radio.contract import RxFrame, RxInfo
from ihd.smwap import Address, MacFrame, build_mpdu

PAN_ID = 0x1D1D
DISPLAY = Address.short(0x0001)


def push_frame(
    eui64: str,
    values: Sequence[PushValue],
    t: float,
    *,
    fcs_len: int = 4,
    seq: int = 0,
    rx_delay_s: float = 0.015,
    rssi_dbm: float | None = -60.0,
    fcs_ok: bool | None = None,
) -> RxFrame:
    """A DLMS push from ``eui64`` sampled at ``t``, as a radio would hand it over.

    Built with the real encoders (DLMS, 802.15.4 MAC, FCS); received ``rx_delay_s`` later.
    """
    apdu = build_push(list(values), timestamp=t, invoke_id=seq)
    mac = MacFrame.data(
        src=Address.from_eui64(eui64), dst=DISPLAY, dst_pan=PAN_ID, seq=seq & 0xFF, payload=apdu
    )
    return rx_frame(
        build_mpdu(mac, fcs_len), t + rx_delay_s, fcs_len=fcs_len, rssi_dbm=rssi_dbm, fcs_ok=fcs_ok
    )


def rx_frame(
    psdu: bytes,
    at: float,
    *,
    fcs_len: int = 4,
    rssi_dbm: float | None = -60.0,
    fcs_ok: bool | None = None,
) -> RxFrame:
    return RxFrame(
        psdu,
        RxInfo(
            timestamp=at,
            channel=0,
            fcs_len=fcs_len,
            whitened=True,
            fcs_ok=fcs_ok,
            rssi_dbm=rssi_dbm,
            lqi=None,
        ),
    )


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` wall seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()
