"""Credentials' secrets kept out of logs: gunicorn's access log (perfanalysis.serving) and the
apps' own log records (``RedactingFilter``), such as Flask's "Exception on <path>" line."""

from __future__ import annotations

import logging
import re
import string
from urllib.parse import quote, unquote

# A credential's secret after its public id: an invitation link's (pai_, in its URL and in the
# Referer and ?next= of pages reached from it), and a key's or token's (pak_, pat_) wherever one
# turns up. The prefix and public id are kept, to tell which one it was.
CREDENTIAL = re.compile(r"(pa[ikt]_[a-z2-7]{13}_)[A-Za-z0-9_-]+")
REDACTED = r"\1[redacted]"
# what a redacted value keeps unescaped: printable ASCII and the space, but '"', '\\' and the
# other white space (a line break decoded from %0A would forge a log line)
_LOGGABLE = " " + "".join(c for c in string.printable if c not in '"\\' and not c.isspace())
_DECODINGS = 3  # a URL percent-encoded once, and once more inside ?next=, with a margin


def redact_credentials(text: str) -> str:
    """``text`` without any credential's secret, encoded or not; unchanged if it holds none.

    A secret may be percent-encoded (``%5F`` for "_", a ``?next=`` holding a link), so the text
    is decoded before it is searched; a value holding one is logged decoded, redacted and
    re-escaped (no quote or line break from the decoding)."""
    decoded = text
    for _ in range(_DECODINGS):
        if "%" not in decoded:
            break
        decoded = unquote(decoded)
    if CREDENTIAL.search(decoded) is None:
        return text
    return quote(CREDENTIAL.sub(REDACTED, decoded), safe=_LOGGABLE, errors="backslashreplace")


class RedactingFilter(logging.Filter):
    """Rewrites a record's message without credentials' secrets; the record is always kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed logging call: the handler reports it, as without us
            return True
        redacted = redact_credentials(message)
        if redacted is not message:
            record.msg, record.args = redacted, None
        return True
