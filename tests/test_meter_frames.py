"""The meter-side frame builder reproduces the shared SMWAP vectors byte for byte.

Inputs are the vectors' field values, written out here from the standard's frame layout
(not parsed by our code): data frame, 2006 format, ACK requested, PAN ID compression, PAN 0x1234, to
short address 0x0002 from EUI-64 0011223344556677, sequence 0x2A, security level 5 with
key identifier mode 1 (key index 1) and frame counter 258. The payload is the vector's
secured payload (ciphertext and MIC): securing it is the SMWAP issue's job, framing is ours.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ihd.sim.meters import meter_frame
from ihd.smwap import Address, AuxSecurityHeader
from ihd.smwap.phy import ppdu_bits

VECTORS = json.loads((Path(__file__).parent / "data" / "smwap_vectors.json").read_text())
CCM = {v["name"]: v for v in VECTORS["ccm_star"]}

MHR_LEN = 2 + 1 + 2 + 2 + 8  # FC, seq, dst PAN, dst short, src extended
AUX_LEN = 1 + 4 + 1  # security control, frame counter, key index


@pytest.mark.parametrize("v", VECTORS["ppdu"], ids=lambda v: v["name"])
def test_meter_frame_builds_the_vector_ppdu(v: dict[str, Any]) -> None:
    secured = bytes.fromhex(CCM["smwap_like_data_level5"]["secured_frame_no_fcs"])
    payload = secured[MHR_LEN + AUX_LEN :]
    ppdu = meter_frame(
        src_eui64="0011223344556677",
        dst=Address.short(0x0002),
        pan_id=0x1234,
        seq=0x2A,
        payload=payload,
        fcs_len=v["fcs_len"],
        whitened=bool(v["data_whitening"]),
        ack_request=True,
        aux=AuxSecurityHeader(5, frame_counter=258, key_index=1),
    )
    shr_phr = 4 + 2 + 2
    assert ppdu[:4] == b"\x55" * v["preamble_octets"]
    assert ppdu[4:6] == bytes.fromhex(v["sfd"])
    assert ppdu[6:8] == bytes.fromhex(v["phr_octets"])
    assert ppdu[shr_phr:] == bytes.fromhex(v["psdu_on_air_octets"])
    assert ppdu_bits(ppdu, shr_phr) == v["on_air_bits"]


def test_meter_frame_builds_the_level1_vector_frame() -> None:
    """Level 1 (MIC-32) leaves the payload in clear: the frame up to the MIC is ours."""
    v = CCM["smwap_like_data_level1"]
    secured = bytes.fromhex(v["secured_frame_no_fcs"])
    plaintext = bytes.fromhex(v["a_data"])[MHR_LEN + 5 :]  # key id mode 0: no key index
    mic = secured[-v["mic_len"] :]
    ppdu = meter_frame(
        src_eui64="0011223344556677",
        dst=Address.short(0x0002),
        pan_id=0x1234,
        seq=0x2A,
        payload=plaintext + mic,
        fcs_len=4,
        whitened=False,
        ack_request=True,
        aux=AuxSecurityHeader(1, frame_counter=v["frame_counter"]),
    )
    assert plaintext == b"E=012345.678kWh"
    psdu = ppdu[8:]
    assert psdu[:-4] == secured
