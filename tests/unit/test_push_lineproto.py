import math
from typing import Any

import pytest

from exporter.model import COUNTER, GAUGE, MetricFamily, family, single
from exporter.push.lineproto import LineEncoder, batches, escape_measurement, escape_tag

T = 1_700_000_000_123_456_789


def encode(*families: object, host: str = "web1") -> tuple[str, int]:
    encoded = LineEncoder(host).encode(families, T)  # type: ignore[arg-type]
    return "".join(encoded.lines), encoded.non_finite


def test_one_point_per_sample_with_host_tag_sorted_keys_and_float_field() -> None:
    cpu = family("node_cpu_seconds_total", "help", COUNTER, "mode", "cpu")
    cpu.add(12.5, "idle", "0")
    cpu.add(3.0, "user", "1")
    text, skipped = encode(cpu, single("node_load1", "help", GAUGE, 0.25))
    assert text == (
        f"node_cpu_seconds_total,cpu=0,host=web1,mode=idle value=12.5 {T}\n"
        f"node_cpu_seconds_total,cpu=1,host=web1,mode=user value=3.0 {T}\n"
        f"node_load1,host=web1 value=0.25 {T}\n"
    )
    assert skipped == 0


# (label value, as written in line protocol, as InfluxDB 1.x and ingest read it back)
LABELS = [
    ("with space", r"with\ space", "with space"),
    ("a,b", r"a\,b", "a,b"),
    ("k=v", r"k\=v", "k=v"),
    ('"quoted"', '"quoted"', '"quoted"'),  # quotes are literal in tag values
    (r"C:\dir", r"C:\dir", r"C:\dir"),  # a backslash before an ordinary character is literal
    (r"dev-disk-by\x2duuid", r"dev-disk-by\x2duuid", r"dev-disk-by\x2duuid"),
    ("two\\\\x", "two\\\\x", "two\\\\x"),  # runs too: 1.x does not read \\ as one backslash
    ("a\\,b", "a\\\\,b", "a\\,b"),  # a backslash before an escaped comma needs nothing more
    ("a\\ b", "a\\\\ b", "a\\ b"),
    ("ends\\", "ends", "ends"),  # it would escape the separator: dropped
    ("line\nbreak", r"line\nbreak", r"line\nbreak"),  # control characters are refused
    ("tab\there", r"tab\there", r"tab\there"),
    ("bell\x07", r"bell\x07", r"bell\x07"),
    ("ünïcode", "ünïcode", "ünïcode"),
]


@pytest.mark.parametrize(("label", "escaped", "stored"), LABELS)
def test_tag_value_escaping(label: str, escaped: str, stored: str) -> None:
    assert escape_tag(label) == escaped
    fam = family("m", "help", GAUGE, "l")
    fam.add(1.0, label)
    assert encode(fam)[0] == f"m,host=web1,l={escaped} value=1.0 {T}\n"


@pytest.mark.parametrize(("label", "escaped", "stored"), LABELS)
def test_ingest_reads_back_what_was_meant(label: str, escaped: str, stored: str) -> None:
    """The contract with ingest's parser, which follows what InfluxDB 1.6.7 was measured to do."""
    lineprotocol = pytest.importorskip("ingest.lineprotocol")
    fam = family("my meas,x", "help", GAUGE, "a label", "l")
    fam.add(1.5, "v", label)
    point = lineprotocol.parse_line(encode(fam)[0].rstrip("\n"))
    assert point.measurement == "my meas,x"
    assert dict(point.tags) == {"a label": "v", "host": "web1", "l": stored}
    assert point.fields == (("value", 1.5),)
    assert point.timestamp == T


def test_a_label_value_of_backslashes_only_is_omitted() -> None:
    fam = family("m", "help", GAUGE, "l")
    fam.add(1.0, "\\\\")
    assert encode(fam)[0] == f"m,host=web1 value=1.0 {T}\n"


def test_measurement_escapes_comma_and_space_but_not_equals() -> None:
    assert escape_measurement("my meas,x=y") == r"my\ meas\,x=y"
    assert escape_measurement("plain_name") == "plain_name"


def test_host_with_special_characters_is_escaped() -> None:
    text, _ = encode(single("up", "help", GAUGE, 1.0), host="rack 1,a=b")
    assert text == f"up,host=rack\\ 1\\,a\\=b value=1.0 {T}\n"


def test_empty_label_values_are_omitted() -> None:
    fam = family("node_network_info", "help", GAUGE, "device", "address", "duplex")
    fam.add(1.0, "eth0", "", "full")
    assert encode(fam)[0] == f"node_network_info,device=eth0,duplex=full,host=web1 value=1.0 {T}\n"


def test_non_finite_values_are_skipped_and_counted() -> None:
    fam = family("m", "help", GAUGE, "k")
    for i, value in enumerate([math.nan, math.inf, -math.inf, 2.0]):
        fam.add(value, str(i))
    text, skipped = encode(fam)
    assert text == f"m,host=web1,k=3 value=2.0 {T}\n"
    assert skipped == 3


def test_labels_colliding_with_forced_tags_are_renamed_exported() -> None:
    fam = family("node_scrape_collector_success", "help", GAUGE, "collector")
    fam.add(1.0, "cpu")
    other = family("m", "help", GAUGE, "host", "tenant")
    other.add(2.0, "elsewhere", "acme")
    from_textfile = family("backup_last_run", "help", GAUGE, "time")  # InfluxDB refuses the key
    from_textfile.add(3.0, "nightly")
    assert encode(fam, other, from_textfile)[0] == (
        f"node_scrape_collector_success,exported_collector=cpu,host=web1 value=1.0 {T}\n"
        f"m,exported_host=elsewhere,exported_tenant=acme,host=web1 value=2.0 {T}\n"
        f"backup_last_run,exported_time=nightly,host=web1 value=3.0 {T}\n"
    )


def test_a_renamed_label_never_takes_the_name_of_another_label() -> None:
    """host beside exported_host (a textfile metric): one tag key twice gets a batch refused."""
    fam = family("m", "help", GAUGE, "exported_host", "host", "exported_exported_host")
    fam.add(1.0, "a", "b", "c")
    assert encode(fam)[0] == (
        f"m,exported_exported_exported_host=b,exported_exported_host=c,exported_host=a,"
        f"host=web1 value=1.0 {T}\n"
    )


def test_a_repeated_label_set_is_sent_once_first_wins_as_on_metrics() -> None:
    fam = family("m", "help", GAUGE, "k")
    fam.add(1.0, "a")
    fam.add(2.0, "a")
    assert encode(fam)[0] == f"m,host=web1,k=a value=1.0 {T}\n"


def test_values_keep_float_precision_and_exponents() -> None:
    fam = family("m", "help", GAUGE, "k")
    for key, value in [("a", 1e20), ("b", -0.000001), ("c", 0.1 + 0.2), ("d", 7)]:
        fam.add(value, key)
    text, _ = encode(fam)
    values = [line.split(" ")[1] for line in text.splitlines()]
    assert values == ["value=1e+20", "value=-1e-06", "value=0.30000000000000004", "value=7"]


def test_cached_prefixes_follow_new_values_and_timestamps() -> None:
    encoder = LineEncoder("h")
    for value, ts in [(1.0, 10), (2.0, 20)]:
        fam = family("m", "help", GAUGE, "k")
        fam.add(value, "x")
        assert encoder.encode([fam], ts).lines == [f"m,host=h,k=x value={value!r} {ts}\n"]


def test_empty_host_is_refused() -> None:
    with pytest.raises(ValueError, match="host"):
        LineEncoder("")


def test_batches_split_by_point_count() -> None:
    lines = [f"l{i}\n" for i in range(7)]
    assert [list(b) for b in batches(lines, 3)] == [lines[:3], lines[3:6], lines[6:]]


def many_series(count: int, first: int = 0) -> list[MetricFamily]:
    """``count`` series of one family, as a big host's veths and mounts give."""
    fam = family("node_network_receive_bytes_total", "help", COUNTER, "device")
    for n in range(first, first + count):
        fam.add(float(n), f"veth{n:08x}")
    return [fam]


def count_prefixes_built(encoder: LineEncoder, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    built = [0]
    build = encoder._prefix

    def counting(*args: Any) -> str:
        built[0] += 1
        return build(*args)

    monkeypatch.setattr(encoder, "_prefix", counting)
    return built


def test_a_big_host_keeps_every_series_cached_between_encodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """30,000 series (above the 16,384 floor): the second encode reuses every prefix."""
    encoder = LineEncoder("h")
    built = count_prefixes_built(encoder, monkeypatch)
    first = encoder.encode(many_series(30_000), T)
    assert built == [30_000]
    second = encoder.encode(many_series(30_000), T + 1)
    assert built == [30_000]
    assert len(second.lines) == len(first.lines) == 30_000
    assert second.lines[7] == first.lines[7].replace(f" {T}\n", f" {T + 1}\n")


def test_series_churn_keeps_the_cache_bounded() -> None:
    """Each cycle 1,000 series go and 1,000 new ones come: the cache is cleared once it holds
    twice the host's series, so it never grows past that plus one cycle's newcomers."""
    encoder = LineEncoder("h")
    sizes = []
    for cycle in range(80):
        encoder.encode(many_series(30_000, first=cycle * 1_000), T + cycle)
        sizes.append(encoder.cached_series)
    assert max(sizes) <= 2 * 30_000 + 1_000
    assert min(sizes[1:]) == 30_000  # cleared and rebuilt from the current series alone
