"""What makes an IRI usable as a node key.

rdflib accepts ``<http://example.org/a b>`` or ``<not an iri>`` with at most a logged warning,
and the JSON-LD parser silently drops an ``@id`` it cannot use. An IRI with a space, a NUL or a
brace is a broken input, not a node: kgrec checks every IRI against the ``IRIREF`` rule that
Turtle, N-Triples and SPARQL share (no control characters, spaces or ``<>"{}|^`\\``) and asks
for a scheme (``http:``, ``urn:``...), since a relative IRI names nothing outside its file.
"""

from __future__ import annotations

import re

_FORBIDDEN = re.compile(r'[\x00-\x20<>"{}|^`\\\x7f]')
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_NAMES = {" ": "a space", "\t": "a tab", "\n": "a line break", "\r": "a carriage return", "\x00": "a NUL byte"}


def iri_problem(iri: str) -> str | None:
    """Why ``iri`` is not a usable absolute IRI, or None when it is."""
    if not iri:
        return "is empty"
    bad = _FORBIDDEN.search(iri)
    if bad:
        char = bad.group()
        name = _NAMES.get(char) or (f"the control character U+{ord(char):04X}" if ord(char) < 32 or ord(char) == 127 else repr(char))
        return f"holds {name} (not allowed in an IRI)"
    if has_lone_surrogate(iri):
        return "holds half a UTF-16 surrogate pair (a broken \\u escape)"
    if not _SCHEME.match(iri):
        return "is not an absolute IRI (it has no scheme such as 'http:')"
    return None


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds half a UTF-16 surrogate pair: a ``\\uD800`` escape with no partner
    decodes to it, and no UTF-8 file (nor Parquet) can store it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def shown(iri: str, limit: int = 120) -> str:
    """``iri`` quoted for a message, cut to ``limit`` characters."""
    return repr(iri if len(iri) <= limit else iri[:limit] + "...")
