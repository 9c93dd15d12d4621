"""Query-string parameter types every route shares.

Every text filter is `FilterText`: a string without NUL. PostgreSQL cannot compare text holding a NUL
(the driver fails, which would be a 500), SQLite's LIKE and instr() stop at it (so a filter of one NUL
would match everything), and no stored value contains one: such a filter is refused with 422 before
any query runs. tests/conformance/test_query_nul.py walks every route's string parameters to keep it so.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from trunkline.resources._base import no_nul

FilterText = Annotated[str, AfterValidator(no_nul)]
