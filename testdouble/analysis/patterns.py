"""Strings drawn from a regular expression: a parser and sampler for a subset of ECMA-262.

Lookaround, backreferences and Unicode properties are not supported (RegexUnsupported); the
strings drawn are candidates only, each checked against the pattern by jsonschema_rs after.
"""

import random
import re
import string

from testdouble.analysis.limits import MAX_STRING_LENGTH


class RegexUnsupported(Exception):
    """The pattern uses syntax the sampler does not handle (e.g. lookaround, backreferences)."""


class SampleTooLong(Exception):
    """A sample grew past _MAX_SAMPLE_LENGTH."""


_MAX_SAMPLE_LENGTH = 2 * MAX_STRING_LENGTH
_MAX_GROUP_NESTING = 50  # keeps the recursive parser and sampler far from the recursion limit
_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)
_COMMON_CHARS = string.ascii_letters + string.digits
_OTHER_CHARS = " -_.@:/+#,;!?()'&%=*$\t\n"


def _code_point(code: int) -> str:
    # Lone surrogates cannot be passed to jsonschema_rs, nor encoded as UTF-8.
    if code > _MAX_CODE_POINT or _SURROGATES[0] <= code <= _SURROGATES[1]:
        raise RegexUnsupported("escape outside the Unicode scalar values")
    return chr(code)


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    result, start = [], 0
    for low, high in sorted(ranges):
        if low > start:
            result.append((start, low - 1))
        start = max(start, high + 1)
    if start <= _MAX_CODE_POINT:
        result.append((start, _MAX_CODE_POINT))
    return result


_DIGITS = [(ord("0"), ord("9"))]
_WORD = [(ord("0"), ord("9")), (ord("A"), ord("Z")), (ord("_"), ord("_")), (ord("a"), ord("z"))]
_SPACE = [
    (0x09, 0x0D),
    (0x20, 0x20),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
    (0xFEFF, 0xFEFF),
]
_LINE_TERMINATORS = [(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)]
_CLASS_ESCAPES = {
    "d": _DIGITS,
    "D": _complement(_DIGITS),
    "w": _WORD,
    "W": _complement(_WORD),
    "s": _SPACE,
    "S": _complement(_SPACE),
}
_CHAR_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v", "0": "\0"}
_QUANTIFIER = re.compile(r"\{(\d+)(,(\d*))?\}")


class _CharSet:
    """A set of code points to draw one character from, preferring plain ASCII."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        no_surrogates = _complement([*_complement(ranges), _SURROGATES])
        self.ranges = no_surrogates
        self.common = [char for char in _COMMON_CHARS if self._has(ord(char))]
        self.other = [char for char in _OTHER_CHARS if self._has(ord(char))]

    def _has(self, code: int) -> bool:
        return any(low <= code <= high for low, high in self.ranges)

    def pick(self, rng: random.Random) -> str:
        if self.common:
            return rng.choice(self.common)
        if self.other:
            return rng.choice(self.other)
        if not self.ranges:
            raise RegexUnsupported("empty character class")
        low, high = rng.choice(self.ranges)
        return chr(rng.randint(low, high))


def parse_pattern(pattern: str) -> tuple:
    """The pattern's syntax tree, for RegexSampler; raises RegexUnsupported."""
    return _RegexParser(pattern).parse()


class _RegexParser:
    """Parses a pattern into tuples: ("lit", c), ("set", _CharSet), ("seq", [...]),
    ("alt", [...]), ("rep", node, min, max or None) and ("empty",) for anchors."""

    def __init__(self, pattern: str) -> None:
        self.source = pattern
        self.position = 0
        self.depth = 0

    def parse(self) -> tuple:
        tree = self._disjunction()
        if self.position != len(self.source):
            raise RegexUnsupported("unbalanced parenthesis")
        return tree

    def _peek(self) -> str:
        return self.source[self.position] if self.position < len(self.source) else ""

    def _next(self) -> str:
        char = self._peek()
        if not char:
            raise RegexUnsupported("unexpected end of pattern")
        self.position += 1
        return char

    def _disjunction(self) -> tuple:
        branches = [self._alternative()]
        while self._peek() == "|":
            self.position += 1
            branches.append(self._alternative())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def _alternative(self) -> tuple:
        terms = []
        while self._peek() not in ("", "|", ")"):
            terms.append(self._term())
        return ("seq", terms)

    def _term(self) -> tuple:
        char = self._next()
        if char in "^$":
            return ("empty",)
        if char == "(":
            atom = self._group()
        elif char == "[":
            atom = ("set", _CharSet(self._class_ranges()))
        elif char == ".":
            atom = ("set", _CharSet(_complement(_LINE_TERMINATORS)))
        elif char == "\\":
            atom = self._escape()
        elif char in "*+?" or (char == "{" and _QUANTIFIER.match(self.source, self.position - 1)):
            raise RegexUnsupported("nothing to repeat")
        else:
            atom = ("lit", char)
        return self._quantified(atom)

    def _group(self) -> tuple:
        self.depth += 1
        if self.depth > _MAX_GROUP_NESTING:
            raise RegexUnsupported("groups nested too deeply")
        if self.source.startswith("?:", self.position):
            self.position += 2
        elif self.source.startswith("?<", self.position) and self._peek_at(2) not in "=!":
            end = self.source.find(">", self.position)
            if end < 0:
                raise RegexUnsupported("unterminated group name")
            self.position = end + 1
        elif self._peek() == "?":
            raise RegexUnsupported("lookaround")
        inner = self._disjunction()
        if self._next() != ")":
            raise RegexUnsupported("unbalanced parenthesis")
        self.depth -= 1
        return inner

    def _peek_at(self, offset: int) -> str:
        index = self.position + offset
        return self.source[index] if index < len(self.source) else ""

    def _escape(self) -> tuple:
        char = self._next()
        if char in _CLASS_ESCAPES:
            return ("set", _CharSet(_CLASS_ESCAPES[char]))
        if char in "bB":
            return ("empty",)  # word boundaries: the final pattern check decides
        if char in "123456789kpP":
            raise RegexUnsupported("backreference or Unicode property")
        return ("lit", self._escaped_char(char))

    def _escaped_char(self, char: str) -> str:
        if char in _CHAR_ESCAPES:
            return _CHAR_ESCAPES[char]
        if char == "x":
            return chr(self._hex(2))
        if char == "u":
            if self._peek() == "{":
                end = self.source.find("}", self.position)
                digits = self.source[self.position + 1 : end] if end > 0 else ""
                if not digits or not all(c in string.hexdigits for c in digits):
                    raise RegexUnsupported("bad \\u{...} escape")
                self.position = end + 1
                return _code_point(int(digits, 16))
            code = self._hex(4)
            # "\\uD83D\\uDE00" is one character in JavaScript: a UTF-16 surrogate pair.
            if 0xD800 <= code <= 0xDBFF and self.source.startswith("\\u", self.position):
                self.position += 2
                low = self._hex(4)
                if 0xDC00 <= low <= 0xDFFF:
                    return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
            return _code_point(code)
        if char == "c":
            return chr(ord(self._next()) % 32)
        return char

    def _hex(self, count: int) -> int:
        digits = self.source[self.position : self.position + count]
        if len(digits) != count or not all(c in string.hexdigits for c in digits):
            raise RegexUnsupported("bad hex escape")
        self.position += count
        return int(digits, 16)

    def _class_ranges(self) -> list[tuple[int, int]]:
        negated = self._peek() == "^"
        if negated:
            self.position += 1
        ranges: list[tuple[int, int]] = []
        while (char := self._next()) != "]":
            item = self._class_atom(char)
            if isinstance(item, str) and self._peek() == "-" and self._peek_at(1) not in ("]", ""):
                self.position += 1
                end = self._class_atom(self._next())
                if isinstance(end, str):
                    if ord(item) > ord(end):
                        raise RegexUnsupported("range out of order")
                    ranges.append((ord(item), ord(end)))
                    continue
                ranges.extend([(ord(item), ord(item)), (ord("-"), ord("-")), *end])
                continue
            ranges.extend([(ord(item), ord(item))] if isinstance(item, str) else item)
        return _complement(ranges) if negated else ranges

    def _class_atom(self, char: str) -> str | list[tuple[int, int]]:
        if char != "\\":
            return char
        escaped = self._next()
        if escaped in _CLASS_ESCAPES:
            return _CLASS_ESCAPES[escaped]
        if escaped == "b":
            return "\b"
        if escaped in "pP":
            raise RegexUnsupported("Unicode property")
        return self._escaped_char(escaped)

    def _quantified(self, atom: tuple) -> tuple:
        char = self._peek()
        if char in ("*", "+", "?"):
            self.position += 1
            low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[char]
        elif char == "{" and (match := _QUANTIFIER.match(self.source, self.position)):
            self.position = match.end()
            low = int(match[1])
            high = low if match[2] is None else (int(match[3]) if match[3] else None)
        else:
            return atom
        if self._peek() == "?":  # lazy quantifiers generate the same strings
            self.position += 1
        if high is not None and low > high:
            raise RegexUnsupported("quantifier range out of order")
        return ("rep", atom, low, high)


class RegexSampler:
    """Draws one string from a parsed pattern; repeats go at most `extra` beyond their minimum,
    and all the way there when `stretch` is set."""

    def __init__(self, rng: random.Random, extra: int, stretch: bool) -> None:
        self.rng = rng
        self.extra = extra
        self.stretch = stretch
        self.output: list[str] = []

    def sample(self, tree: tuple) -> str:
        self._visit(tree)
        return "".join(self.output)

    def _visit(self, node: tuple) -> None:
        kind = node[0]
        if kind == "lit":
            self.output.append(node[1])
        elif kind == "set":
            self.output.append(node[1].pick(self.rng))
        elif kind == "seq":
            for child in node[1]:
                self._visit(child)
        elif kind == "alt":
            self._visit(self.rng.choice(node[1]))
        elif kind == "rep":
            _, child, low, high = node
            if low > _MAX_SAMPLE_LENGTH:
                raise SampleTooLong
            top = low + self.extra if high is None else min(high, low + self.extra)
            for _ in range(top if self.stretch else self.rng.randint(low, top)):
                self._visit(child)
                if len(self.output) > _MAX_SAMPLE_LENGTH:
                    raise SampleTooLong
