"""A plugin that misbehaves on chosen deals, to test fault isolation (SPEC §9).

Its ``dealdesk_enrich`` looks at the deal's id: ``SEGV-*`` dereferences a null pointer,
``EXIT-*`` ends the process with ``os._exit(3)``, ``SYSEXIT-*`` calls ``sys.exit(4)``,
``LOOP-*`` never returns, ``HOG-*`` allocates memory until it fails, ``FLAKY-*`` kills its
process the first time it sees that deal in a process started after the marker file
``$DEALDESK_FLAKY_MARK`` was made (and removes the marker). Any other deal is untouched.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

from dealdesk import hookimpl


@hookimpl
def dealdesk_enrich(deal: dict[str, Any]) -> dict[str, Any] | None:
    deal_id = str(deal.get("id", ""))
    kind = deal_id.split("-", 1)[0]
    if kind == "SEGV":
        ctypes.string_at(0)
    elif kind == "EXIT":
        os._exit(3)
    elif kind == "SYSEXIT":
        sys.exit(4)
    elif kind == "LOOP":
        while True:
            pass
    elif kind == "HOG":
        hoard = []
        while True:
            hoard.append(bytearray(64 * 1024 * 1024))
    elif kind == "FLAKY":
        mark = os.environ.get("DEALDESK_FLAKY_MARK", "")
        if mark and os.path.exists(mark):
            os.remove(mark)
            os._exit(5)
    return None
