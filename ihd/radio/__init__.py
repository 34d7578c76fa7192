"""Radios: the I/O edge that delivers received PSDUs with reception metadata."""

from ihd.radio.contract import Radio, RadioError, RxFrame, RxInfo

__all__ = ["Radio", "RadioError", "RxFrame", "RxInfo"]
