"""Filter regexes in Go's RE2 syntax, as node_exporter reads them (perfanalysis.goregex).

The expected matches are Go's: tests/integration/test_goregex_node_exporter.py checks a set of
these patterns against node_exporter 1.5.0 itself.
"""

from __future__ import annotations

import contextlib
import warnings

import pytest

from exporter.config import load
from perfanalysis.config import ConfigError, regex
from perfanalysis.goregex import GoRegexError, compile_go, translate
from tests.unit.promtext import label_values, parse_samples, scrape, tree


def matches(pattern: str, *names: str) -> list[str]:
    """Which of ``names`` the pattern finds (unanchored, as Go's MatchString and our filters)."""
    compiled = compile_go(pattern)
    return [name for name in names if compiled.search(name)]


def refusal(pattern: str) -> str:
    with pytest.raises(GoRegexError) as caught:
        compile_go(pattern)
    return str(caught.value)


@pytest.mark.parametrize(
    ("name", "inside", "outside"),
    [
        ("alpha", "aZ", "0_-é"),
        ("digit", "09", "a٣"),  # ASCII only: not the Arabic-Indic three
        ("alnum", "a9Z", "_-"),
        ("space", " \t\n\v\f\r", "a\xa0"),
        ("upper", "AZ", "az"),
        ("lower", "az", "AZ"),
        ("punct", "!/:@[`{~", "a0 "),
        ("xdigit", "09afAF", "gG"),
        ("word", "a0_Z", "-é"),
        ("blank", " \t", "\n"),
        ("cntrl", "\x00\x1f\x7f", " a"),
        ("print", " ~", "\x7f"),
        ("graph", "!~", " "),
        ("ascii", "\x00\x7f", "é"),
    ],
)
def test_posix_classes_inside_brackets(name: str, inside: str, outside: str) -> None:
    assert matches(f"^[[:{name}:]]$", *inside) == list(inside)
    assert matches(f"^[[:{name}:]]$", *outside) == []
    assert matches(f"^[[:^{name}:]]$", *outside) == list(outside)
    assert matches(f"^[[:^{name}:]]$", *inside) == []


def test_the_report_s_example_excludes_loop_and_zram_devices_only() -> None:
    assert matches(
        "^(loop|zram)[[:digit:]]+$", "loop0", "loop12", "zram0", "ram0", "sda1", "loopx", "zram"
    ) == ["loop0", "loop12", "zram0"]


def test_a_posix_class_with_other_members_and_outside_brackets() -> None:
    assert matches("^[[:digit:]a-c_]+$", "1a_", "1d") == ["1a_"]
    assert matches("^[:digit:]$", "d", ":", "1") == ["d", ":"]  # outside [...]: a plain set
    assert "invalid character class [:digits:]" in refusal("[[:digits:]]")


def test_no_python_warning_reaches_the_user() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for pattern in ("[[:digit:]]", "[a--b]", "[a&&b]", "[a~~b]", "[a||b]", "[[]"):
            with contextlib.suppress(GoRegexError):  # a refusal is fine, a warning is not
                compile_go(pattern)


def test_end_of_text_is_go_s_z_and_dollar() -> None:
    assert matches(r"a\z", "a", "a\n") == ["a"]
    assert matches("a$", "a", "a\n") == ["a"]  # Python's $ would also match before the \n
    assert matches("(?m)a$", "a\nb") == ["a\nb"]
    assert "\\Z (Go writes the end of the text as \\z)" in refusal(r"a\Z")


@pytest.mark.parametrize(
    ("pattern", "found", "missed"),
    [
        (r"^\pL+$", ["abc", "éà", "Ωmega"], ["a1", "_"]),
        (r"^\p{L}+$", ["abc", "Ω"], ["a-b"]),
        (r"^\PL+$", ["123", "-_"], ["1a"]),
        (r"^\p{^L}+$", ["123"], ["a"]),
        (r"^\P{^L}+$", ["ab"], ["1"]),
        (r"^\p{Lu}", ["Ab", "Éa"], ["aB"]),
        (r"^\pN+$", ["12", "٣", "½"], ["1a"]),
        (r"^\p{Nd}+$", ["12", "٣"], ["½"]),
        (r"^[\p{Lu}\d]+$", ["A1"], ["a1"]),
        (r"^\p{Any}$", ["\n", "é"], ["ab"]),
        (r"^\d+$", ["123"], ["٣"]),  # Go's \d is ASCII
        (r"^\w+$", ["a_1"], ["é"]),
        (r"\bab\b", ["ab", "éab"], ["xab"]),  # an ASCII word boundary: é is no word char
        (r"^\x{41}\x42\101$", ["ABA"], []),
        (r"^\Qa.b\E$", ["a.b"], ["axb"]),
        ("^a{,2}$", ["a{,2}"], ["aa"]),  # not a repeat in Go: literal
        ("(?i)^ab$", ["AB", "aB"], ["ac"]),
        ("^(?i:a)B$", ["AB"], ["Ab"]),
        ("a(?i)b|c", ["aB", "C"], ["AB"]),
        (
            "(?i)[[:^upper:]]",
            ["1"],
            ["s", "\u017f", "\u212a"],
        ),  # long s, Kelvin: folded, then negated
        ("(?s)^a.b$", ["a\nb"], []),
        ("^a.b$", ["axb"], ["a\nb"]),
        ("(?U)^(a+)(a*)$", ["aa"], []),
        ("^[]a]+$", ["]a"], ["b"]),
        ("^[a-]+$", ["-a"], ["b"]),
        (r"^(?P<disk>sd[a-z])\d*$", ["sda1"], ["hda"]),
    ],
)
def test_go_syntax_python_lacks_or_reads_otherwise(
    pattern: str, found: list[str], missed: list[str]
) -> None:
    assert matches(pattern, *found, *missed) == found


def test_a_repeated_capture_name_is_fine_as_in_go() -> None:
    assert matches("^(?P<x>a)|(?P<x>b)$", "a", "b") == ["a", "b"]


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        (r"(a)\1", r"the backreference \1 at position 3 is not supported by Go's regexp (RE2"),
        ("(?=a)", "the lookahead (?= at position 0 is not supported"),
        ("(?!a)", "the negative lookahead (?! at position 0 is not supported"),
        ("(?<=a)b", "the lookbehind (?<= at position 0 is not supported"),
        ("(?<!a)b", "the negative lookbehind (?<! at position 0 is not supported"),
        ("(?<n>a)", "the named group (?<name> at position 0 is not supported"),
        ("(?P=n)", "the backreference (?P= at position 0"),
        ("(?>a)", "the atomic group (?> at position 0"),
        ("(?#c)", "the comment (?# at position 0"),
        ("(?x)a b", "invalid or unsupported Perl syntax (?x (Go knows the flags i, m, s and U)"),
        ("a*+", "invalid nested repetition operator *+"),
        ("a**", "invalid nested repetition operator **"),
        ("a{2}{3}", "invalid nested repetition operator {2}{3}"),
        ("*a", "missing argument to repetition operator * at position 0"),
        ("a|+", "missing argument to repetition operator + at position 2"),
        ("a{1001}", "invalid repeat count {1001}"),
        ("a{3,2}", "invalid repeat count {3,2}"),
        ("(ab", "missing closing ) at position 0"),
        ("ab)", "unexpected ) at position 2"),
        ("[ab", "missing closing ] at position 0"),
        ("[z-a]", "invalid character class range z-a at position 1"),
        (r"\8", r"invalid escape sequence \8"),
        (r"\u0041", r"invalid escape sequence \u (Go writes a code point as \x{hhhh})"),
        (r"\x{110000}", r"invalid escape sequence \x{110000}"),
        ("a\\", "trailing backslash at end of expression"),
        (r"[\b]", r"invalid escape sequence \b at position 1"),
        (r"\p{Greek}", r"unsupported Unicode class \p{Greek} at position 0"),
        (r"\pX", r"unsupported Unicode class \pX"),
        ("a\udcff", "invalid UTF-8 at position 1"),
        ("(" * 101 + ")" * 101, "groups nest more than 100 deep"),
    ],
)
def test_what_go_refuses_or_python_cannot_match_alike_is_refused(
    pattern: str, problem: str
) -> None:
    assert problem in refusal(pattern)


def test_regex_flags_use_go_syntax_and_name_the_flag_in_refusals() -> None:
    assert regex(r"^\pL$").search("é")
    with pytest.raises(ConfigError) as caught:
        load(["--collector.netdev.device-exclude=^(?!eth)", "--collector.vmstat.fields=\\z("], {})
    assert caught.value.errors == [
        "flag --collector.netdev.device-exclude: invalid value '^(?!eth)': the negative "
        "lookahead (?! at position 1 is not supported by Go's regexp (RE2 syntax), which "
        "node_exporter uses and this exporter follows",
        "flag --collector.vmstat.fields: invalid value '\\\\z(': not a valid regular expression: "
        "missing closing ) at position 2",
    ]


def test_the_default_vmstat_fields_read_the_same_in_both_syntaxes() -> None:
    default = load([], {})["collector_vmstat_fields"]
    assert default.pattern == translate("^(oom_kill|pgpg|pswp|pg.*fault).*")
    assert default.search("pgmajfault")
    assert not default.search("nr_free_pages")


def test_a_posix_class_filter_excludes_loop_and_zram_devices_on_a_fake_proc() -> None:
    """node_exporter's example filter: every loop and zram device goes, and nothing else (the
    flag replaces the default exclude, so ram0 and the partitions stay)."""
    flag = "--collector.diskstats.device-exclude=^(loop|zram)[[:digit:]]+$"
    devices = label_values(
        parse_samples(scrape(tree("6.8"), "diskstats", flags=(flag,))),
        "node_disk_reads_completed_total",
        "device",
    )
    assert {"sda", "ram0", "sda1", "nvme0n1p1", "dm-0"} <= devices
    assert not {d for d in devices if d.startswith(("loop", "zram"))}
    everything = label_values(
        parse_samples(
            scrape(tree("6.8"), "diskstats", flags=("--collector.diskstats.device-exclude=^$",))
        ),
        "node_disk_reads_completed_total",
        "device",
    )
    assert everything - devices == {"loop0", "loop1", "loop2", "loop3", "zram0"}
