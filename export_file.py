"""The export file as a stream: written agent by agent, read member by member.

A million agents make a file of gigabytes; neither side holds more than one agent's JSON (and
the reader one chunk of the file) at a time. The text written is exactly
`json.dumps(document, ensure_ascii=False, indent=1)` and a newline; what is read is parsed by
the same strict rules as a request body (strict_json), one value at a time.
"""

import codecs
import json
import re

from strict_json import InvalidJson, strict_decoder

CHUNK_CHARS = 1 << 20
_SPACE = re.compile(r"[ \t\n\r]*")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def write_export(out, envelope, agents):
    """Write the envelope with `agents` (an iterable of dicts) as its last member; their count."""
    head = json.dumps({**envelope, "agents": []}, ensure_ascii=False, indent=1)
    out.write(head.removesuffix("[]\n}"))
    count = 0
    for agent in agents:
        text = json.dumps(agent, ensure_ascii=False, indent=1)
        # A newline inside JSON text is always an indent: strings carry theirs escaped.
        out.write(f"{',' if count else '['}\n  {text.replace(chr(10), chr(10) + '  ')}")
        count += 1
    out.write("\n ]\n}\n" if count else "[]\n}\n")
    return count


def read_members(source):
    """The (name, value) members of the JSON object in the binary file `source`, in file order.

    The value of `agents`, when it is an array, is an iterator of its items, to be read before
    the next member. A file that is not an object gives one member named None: the whole value.
    Raises ValueError (InvalidJson for what JSON cannot hold), UnicodeError or RecursionError.
    """
    text = _Text(source)
    if text.peek() != "{":
        yield None, text.value()
        text.end()
        return
    text.take("{")
    seen = set()
    while text.peek() != "}" or seen:
        name = text.value()
        if not isinstance(name, str):
            raise ValueError(f"Expecting a member name at character {text.offset}")
        if name in seen:
            raise InvalidJson(f"The file has the member {json.dumps(name)} twice in one object.")
        seen.add(name)
        text.take(":")
        if name == "agents" and text.peek() == "[":
            items = _items(text)
            yield name, items
            for _ in items:  # whatever the reader left unread
                pass
        else:
            yield name, text.value()
        if text.peek() != ",":
            break
        text.take(",")
    text.take("}")
    text.end()


def _items(text):
    text.take("[")
    if text.peek() == "]":
        text.take("]")
        return
    while True:
        yield text.value()
        if text.peek() != ",":
            break
        text.take(",")
    text.take("]")


def _refuse_lone_surrogates(value):
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidJson("The file holds a lone surrogate, which is not Unicode text.") from None


class _Text:
    """The file's text, decoded as UTF-8 a chunk at a time, with a read position in it."""

    def __init__(self, source):
        self._source = source
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._buffer = ""
        self._position = 0
        self._consumed = 0  # characters dropped from the buffer's front
        self._ended = False

    @property
    def offset(self):
        return self._consumed + self._position

    def _read_more(self, at_least=CHUNK_CHARS):
        """Append the next chunk (at least `at_least` bytes); False at the end of the file."""
        if self._ended:
            return False
        data = self._source.read(at_least)
        self._consumed += self._position
        self._buffer = self._buffer[self._position :] + self._decoder.decode(data, final=not data)
        self._position = 0
        self._ended = not data
        return True

    def peek(self):
        """The next character that is not white space ("" at the end), not taken."""
        while True:
            self._position = _SPACE.match(self._buffer, self._position).end()
            if self._position < len(self._buffer) or not self._read_more():
                return self._buffer[self._position : self._position + 1]

    def take(self, character):
        if self.peek() != character:
            raise ValueError(f"Expecting {character!r} at character {self.offset}")
        self._position += 1

    def value(self):
        """The JSON value at the read position, parsed strictly, and the position moved past it."""
        self.peek()
        while True:
            try:
                value, end = strict_decoder.raw_decode(self._buffer, self._position)
            except json.JSONDecodeError as error:
                if not self._may_be_cut(error) or not self._read_more(len(self._buffer)):
                    at = self._consumed + error.pos
                    raise ValueError(f"{error.msg} at character {at}") from None
                continue
            # A number at the very end of the buffer may go on in the next chunk.
            if end < len(self._buffer) or not self._read_more():
                # Only an escape can make a lone surrogate: the file's bytes were UTF-8.
                if _SURROGATE_ESCAPE.search(self._buffer, self._position, end):
                    _refuse_lone_surrogates(value)
                self._position = end
                return value

    def _may_be_cut(self, error):
        """Whether the parse failed only because the value goes on past the buffer's end."""
        near_end = error.pos >= len(self._buffer) - len("\\uXXXX")
        return near_end or error.msg.startswith("Unterminated string")

    def end(self):
        if self.peek() != "":
            raise ValueError(f"Extra data at character {self.offset}")
