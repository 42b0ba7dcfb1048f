"""The faults a call's request asks for, one per event: what each does to that event's
deliveries, so a client can test its own defences against forged, replayed and lost ones.
"""

from typing import NamedTuple

CLOCK_SKEW_SECONDS = 600  # stale and future timestamps are this far off
# A key that is never the secret: a "wrong" signature is well formed, only keyed wrongly.
WRONG_KEY_SUFFIX = ":not-the-secret"


class EventFault(NamedTuple):
    """What happens to the deliveries of one event."""

    shown: dict | None = None  # the fault as the request gave it, for the journal
    drop: bool = False
    delay_ms: int = 0
    copies: int = 1
    timestamp_shift: int = 0
    signature: str | None = None  # None, "wrong" or "missing"

    def signing_secret(self, secret):
        """The key the delivery is signed with (None: sent without a signature)."""
        if self.signature == "missing":
            return None
        if self.signature == "wrong":
            return (secret or "") + WRONG_KEY_SUFFIX
        return secret


NO_FAULT = EventFault()
SHIFTS = {None: 0, "stale": -CLOCK_SKEW_SECONDS, "future": CLOCK_SKEW_SECONDS}


class Faults:
    """The validated `faults` of a call request, by event (at most one each)."""

    def __init__(self, faults):
        self.by_event = {
            fault["event"]: EventFault(
                shown=fault,
                drop=fault.get("drop", False),
                delay_ms=fault.get("delay_ms", 0),
                copies=2 if fault.get("duplicate") else 1,
                timestamp_shift=SHIFTS[fault.get("timestamp")],
                signature=fault.get("signature"),
            )
            for fault in faults
        }

    def get(self, event):
        """The fault for `event`'s deliveries; NO_FAULT when there is none."""
        return self.by_event.get(event, NO_FAULT)
