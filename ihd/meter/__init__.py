"""Meter data: DLMS/COSEM pushes in, typed readings out. No Qt, no SQLite."""

from ihd.meter.reading import Reading, Utility

__all__ = ["Reading", "Utility"]
