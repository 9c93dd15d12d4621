"""trunkline in a test suite: a throw-away server, an isolated account per test, the control API.

    from trunkline.testing import TrunklineServer

The pytest plugin (`trunkline.testing.plugin`, installed with the package) offers the same as
fixtures: `trunkline_server`, `trunkline_account`, `telnyx_client` and `telnyx_env` (docs/testing.md).
This package talks to the server over HTTP only, with the standard library.
"""

from trunkline.testing._http import ControlError
from trunkline.testing.account import Account
from trunkline.testing.server import TrunklineServer, TrunklineStartError

__all__ = ["Account", "ControlError", "TrunklineServer", "TrunklineStartError"]
