"""trunkline: a Telnyx-compatible SIP trunking control plane."""

__version__ = "0.1.0"
