"""JSON through the interpreter's C accelerator (`_json`), without `json`.

`import json` compiles six regular expressions for its pure-Python
fallbacks, about a millisecond on every start of a command that engines
run per container.  The C scanner and encoder under it need none of them.
loads() gives what json.loads gives for text and UTF-8 bytes (its errors
are json's JSONDecodeError, a ValueError); dumps() writes compact JSON, as
json.dumps(obj, separators=(",", ":")) and Go's encoding/json do.  Pretty
printing (indent) is left to the json module, imported only then.

The state files, config.json and the images' JSON are read and written
through this module; json itself is imported only for indented output
(inspect, info) and for a push's manifest.
"""

import _json


class _Decoding:
    """The settings _json.make_scanner reads: json.loads's defaults."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float       # NaN, Infinity and -Infinity, as json.loads


_scan_once = _json.make_scanner(_Decoding())
_WHITESPACE = " \t\n\r"


def _not_serializable(obj):
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _encoder(sort_keys, ensure_ascii):
    # (markers, default, encode string, indent, key sep, item sep, sort_keys,
    # skipkeys, allow_nan); no markers: contain's data is never circular
    quote = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
    return _json.make_encoder(None, _not_serializable, quote, None, ":", ",", sort_keys,
                              False, True)


_ENCODERS = {(s, a): _encoder(s, a) for s in (False, True) for a in (False, True)}


def loads(text):
    """The value of a JSON document (str, or UTF-8 bytes)."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text)
        # (a byte-order mark is allowed, as json.loads does; the utf-8-sig
        # codec would cost an import)
        text = (text[3:] if text.startswith(b"\xef\xbb\xbf") else text).decode()
    end, i = len(text), 0
    while i < end and text[i] in _WHITESPACE:
        i += 1
    try:
        value, i = _scan_once(text, i)
    except StopIteration as e:
        raise _error("Expecting value", text, e.value) from None
    except SystemError:
        # Python 3.11's scanner looks for JSONDecodeError in json.decoder
        # only if that is loaded already: let json raise the error itself
        import json
        return json.loads(text)
    while i < end and text[i] in _WHITESPACE:
        i += 1
    if i != end:
        raise _error("Extra data", text, i)
    return value


def load(f):
    return loads(f.read())


def dumps(value, indent=None, sort_keys=False, ensure_ascii=True):
    """value as JSON text; with indent, pretty-printed by the json module."""
    if indent is not None:
        import json
        return json.dumps(value, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii)
    return "".join(_ENCODERS[bool(sort_keys), bool(ensure_ascii)](value, 0))


def _error(message, text, pos):
    from json import JSONDecodeError
    return JSONDecodeError(message, text, pos)
