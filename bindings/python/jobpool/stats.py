"""stats.py: STATS and STATUS replies as dictionaries.

STATS (lib/PROTOCOL.md) is one object per line: a type word, a name, then key=value
words, percent-encoded, except `reason=`, which is last and runs to the end of its
line. Numbers become int or float; everything else stays a str. Unknown types and
keys are kept as they are (the protocol promises more may come).
"""

from __future__ import annotations

import re
from typing import Any, Union
from urllib.parse import unquote

Value = Union[int, float, str]

_INT = re.compile(r"-?[0-9]+\Z")
_FLOAT = re.compile(r"-?[0-9]+\.[0-9]+\Z")


def value(text: str) -> Value:
    """A STATS or STATUS value: int, float or (percent-decoded) str."""
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return unquote(text) if "%" in text else text


def parse_words(text: str) -> dict[str, Value]:
    """key=value words (and a last `reason=` running to the end) as a dict."""
    out: dict[str, Value] = {}
    reason = None
    at = text.find("reason=")
    if at == 0 or (at > 0 and text[at - 1] in " \t"):
        reason = text[at + len("reason="):]
        text = text[:at]
    for word in text.split():
        key, eq, val = word.partition("=")
        if eq:
            out[key] = value(val)
    if reason is not None:
        out["reason"] = reason
    return out


def parse_stats(body: bytes) -> dict[str, Any]:
    """The STATS body as::

        {"daemon": {...}, "queues": {name: {...}}, "workers": [{"queue": name, ...}],
         "journal": {"file": "journal.3", ...} or None, "other": [(type, name, {...})]}
    """
    out: dict[str, Any] = {"daemon": {}, "queues": {}, "workers": [],
                           "journal": None, "other": []}
    for line in body.decode("ascii", "replace").splitlines():
        parts = line.split(None, 2)
        if len(parts) < 2:
            continue
        kind, name = parts[0], parts[1]
        words = parse_words(parts[2] if len(parts) > 2 else "")
        if kind == "daemon":
            out["daemon"] = dict(words, name=name)
        elif kind == "queue":
            out["queues"][name] = words
        elif kind == "worker":
            out["workers"].append(dict(words, queue=name))
        elif kind == "journal":
            out["journal"] = dict(words, file=name)
        else:
            out["other"].append((kind, name, words))
    return out
