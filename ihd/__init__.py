"""ihd: an open in-home energy display.

Pipeline, one way: radio -> smwap (phy, mac) -> meter -> tariff -> store -> ui.
Nothing below ``ihd.ui`` imports Qt.
"""

__version__ = "0.1.0"
