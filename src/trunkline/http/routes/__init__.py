"""One router per Telnyx resource."""
