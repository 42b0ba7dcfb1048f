"""String values: short phrases of call-centre words, format samples, and pattern matches.

Candidates for a `pattern` come from the pattern itself (patterns.py) and are checked by the
generator's own matcher, jsonschema_rs's regex engine, which the final validation also uses.
"""

import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from testdouble.analysis.limits import (
    DEFAULT_STRING_LENGTH,
    MAX_STRING_LENGTH,
    MAX_TOTAL_CHARS,
    PATTERN_ATTEMPTS,
    LimitExceeded,
    Unsatisfiable,
    show,
)
from testdouble.analysis.nodes import Node
from testdouble.analysis.patterns import (
    RegexSampler,
    RegexUnsupported,
    SampleTooLong,
    parse_pattern,
)

WORDS = (
    "customer", "asked", "about", "billing", "callback", "tomorrow", "morning", "order",
    "delivery", "status", "refund", "requested", "appointment", "confirmed", "account",
    "update", "issue", "resolved", "follow", "up", "pricing", "question", "invoice",
    "payment", "plan", "change", "sample", "text", "caller", "agent", "needs", "help",
)  # fmt: skip
FIRST_NAMES = ("alex", "sam", "jordan", "maria", "noah", "emma", "li", "sofia")
LAST_NAMES = ("morgan", "jansen", "bakker", "smith", "visser", "garcia", "chen", "kowalski")
FALLBACK_STRINGS = (
    "sample text", "sample", "a", "A", "0", "1", "abc", "ABC", "123", "", "yes", "no",
    "alex.morgan@example.com", "https://example.com", "2024-01-01", "+31612345678",
)  # fmt: skip


class Strings:
    """Makes the strings of one generated value, counting their characters against the limit.

    `matches(schema, text)` says whether text is valid against a one-keyword schema
    ({"pattern": ...} or {"format": ...}).
    """

    def __init__(self, rng: random.Random, matches: Callable[[dict, Any], bool]) -> None:
        self.rng = rng
        self.matches = matches
        self.chars = 0

    def value(self, node: Node) -> str:
        """A string within the node's lengths that matches its patterns and formats."""
        low, high = node.min_length, node.max_length
        if low > MAX_STRING_LENGTH:
            raise Unsatisfiable(
                node.pointer,
                f"has minLength {low} above the generator limit of {MAX_STRING_LENGTH} characters",
            )
        if high is not None and low > high:
            raise Unsatisfiable(
                node.pointer,
                f"has minLength {low} above maxLength {high}, so no value satisfies it",
            )
        if node.patterns or node.formats:
            text = self._constrained(node, low, high)
        else:
            text = self.phrase(low, high)
        self.chars += len(text)
        if self.chars > MAX_TOTAL_CHARS:
            raise LimitExceeded(
                node.pointer,
                f"needs more than the generator limit of {MAX_TOTAL_CHARS} characters in total",
            )
        return text

    def phrase(self, low: int, high: int | None) -> str:
        """Return call-centre words joined by spaces, cut to a length in [low, high]."""
        longest = max(low, DEFAULT_STRING_LENGTH)
        if high is not None:
            longest = min(longest, high)
        words = [self.rng.choice(WORDS) for _ in range(self.rng.randint(2, 4))]
        length = sum(len(word) + 1 for word in words) - 1
        while length < low:
            words.append(self.rng.choice(WORDS))
            length += len(words[-1]) + 1
        text = " ".join(words)[:longest].rstrip(" ")
        return text + "s" * (low - len(text))

    def pattern_candidates(self, pattern: str, low: int, high: int | None) -> Iterator[str]:
        """Strings drawn from the pattern, aiming at lengths in [low, high]; maybe none match."""
        try:
            tree = parse_pattern(pattern)
        except RegexUnsupported:
            return
        # Repeats start random and short; when samples miss the length limits, every repeat is
        # stretched to its top count and `extra` is bisected between "too short" and "too long".
        extra, stretch = 3, False
        too_short = too_long = None
        for _ in range(PATTERN_ATTEMPTS):
            try:
                core = RegexSampler(self.rng, extra, stretch).sample(tree)
            except RegexUnsupported:
                return
            except SampleTooLong:
                too_long = extra
            else:
                if len(core) >= low and (high is None or len(core) <= high):
                    yield core
                    continue  # the right length; if it fails otherwise, sample again
                if len(core) < low:
                    padding = self.phrase(low - len(core), low - len(core))
                    yield core + padding  # an unanchored pattern still matches with text around it
                    yield padding + core
                    too_short, stretch = extra, True
                else:
                    yield core[:high]
                    too_long = extra
            if too_long is None:
                extra = min(max(extra * 2, 1), MAX_STRING_LENGTH)
            elif too_short is None:
                extra //= 2
            else:
                extra = (too_short + too_long) // 2

    def _constrained(self, node: Node, low: int, high: int | None) -> str:
        for candidate in self._candidates(node, low, high):
            if self._fits(node, candidate, low, high):
                return candidate
        length_note = "" if low == 0 and high is None else " within its length limits"
        if node.patterns and node.formats:
            what = f"pattern {show(node.patterns[0])} and format {show(node.formats[0])}"
            raise Unsatisfiable(
                node.pointer,
                f"has {what} that no generated candidate satisfies together{length_note}",
            )
        if node.patterns:
            raise Unsatisfiable(
                node.pointer,
                f"has pattern {show(node.patterns[0])} that could not be satisfied{length_note} "
                "by any generated candidate",
            )
        raise Unsatisfiable(
            node.pointer,
            f"has format {show(node.formats[0])} that could not be satisfied{length_note}",
        )

    def _candidates(self, node: Node, low: int, high: int | None) -> Iterator[str]:
        for format_name in node.formats:
            sampler = FORMAT_SAMPLERS.get(format_name)
            if sampler is not None:
                for _ in range(3):
                    yield sampler(self.rng)
        if node.patterns:
            yield from self.pattern_candidates(node.patterns[0], low, high)
        else:
            yield self.phrase(low, high)  # formats jsonschema_rs does not know are not checked
        yield from FALLBACK_STRINGS

    def _fits(self, node: Node, text: str, low: int, high: int | None) -> bool:
        if len(text) < low or (high is not None and len(text) > high):
            return False
        return all(self.matches({"pattern": pattern}, text) for pattern in node.patterns) and all(
            self.matches({"format": format_name}, text) for format_name in node.formats
        )


def _sample_date(rng: random.Random) -> str:
    return f"{rng.randint(2024, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _sample_time(rng: random.Random) -> str:
    return f"{rng.randint(8, 18):02d}:{rng.randrange(0, 60, 5):02d}:{rng.randint(0, 59):02d}Z"


def _sample_email(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}@example.com"


def _sample_call_url(rng: random.Random) -> str:
    return f"https://example.com/calls/{rng.randint(1000, 9999)}"


def _sample_call_path(rng: random.Random) -> str:
    return f"/calls/{rng.randint(1000, 9999)}"


def _sample_hostname(rng: random.Random) -> str:
    return f"{rng.choice(('support', 'sales', 'billing'))}.example.com"


# A plausible value for each format jsonschema_rs checks; tried before patterns and phrases.
FORMAT_SAMPLERS: dict[str, Callable[[random.Random], str]] = {
    "date-time": lambda rng: f"{_sample_date(rng)}T{_sample_time(rng)}",
    "date": _sample_date,
    "time": _sample_time,
    "email": _sample_email,
    "idn-email": _sample_email,
    "uri": _sample_call_url,
    "iri": _sample_call_url,
    "uri-reference": _sample_call_path,
    "iri-reference": _sample_call_path,
    "uri-template": lambda rng: "https://example.com/calls/{call_id}",
    "uuid": lambda rng: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    "hostname": _sample_hostname,
    "idn-hostname": _sample_hostname,
    "ipv4": lambda rng: f"192.0.2.{rng.randint(1, 254)}",
    "ipv6": lambda rng: f"2001:db8::{rng.randint(1, 0xFFFF):x}",
    "duration": lambda rng: f"PT{rng.randint(1, 59)}M",
    "json-pointer": lambda rng: f"/{rng.choice(WORDS)}",
    "relative-json-pointer": lambda rng: f"0/{rng.choice(WORDS)}",
    "regex": lambda rng: "^[a-z]+$",
}
