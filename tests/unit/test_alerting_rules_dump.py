"""rules.dump writes the generated files with libyaml's emitter when PyYAML has it, byte for byte
what the pure-Python emitter writes: the checked-in tree still passes ``generate --check``, and
for any data, strings libyaml would write otherwise (escaped emoji, line separators, long
double-quoted lines folded at the width) go to the pure-Python emitter."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from perfanalysis.alerting import alertmanager, platform, promtests, rules
from perfanalysis.alerting.generate import THRESHOLDS
from perfanalysis.alerting.thresholds import load
from perfanalysis.paths import ROOT

needs_libyaml = pytest.mark.skipif(rules.FAST_DUMPER is None, reason="PyYAML without libyaml")


def pure_python(data: Any) -> str:
    """What dump wrote before libyaml: yaml.safe_dump, the pure-Python emitter."""
    return rules.GENERATED + yaml.safe_dump(
        dict(data), sort_keys=False, width=4096, allow_unicode=True
    )


def committed_data() -> list[dict[str, Any]]:
    thresholds = load(THRESHOLDS)
    data = [rules.rule_file(scope) for scope in rules.scopes(thresholds)]
    data += [promtests.promtool_test_file(thresholds, scope, "../rules")
             for scope in rules.scopes(thresholds)]  # fmt: skip
    return [*data, platform.rule_file(), alertmanager.config(thresholds)]


def test_generate_check_passes_on_the_checked_in_files() -> None:
    done = subprocess.run([sys.executable, "-m", "perfanalysis.alerting", "generate", "--check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@needs_libyaml
def test_the_committed_files_are_written_by_libyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[type[Any]] = []
    real_dump = yaml.dump

    def recording_dump(data: Any, **kwargs: Any) -> Any:
        used.append(kwargs["Dumper"])
        return real_dump(data, **kwargs)

    monkeypatch.setattr(yaml, "dump", recording_dump)
    for data in committed_data():
        assert rules.dump(data) == pure_python(data)
    assert used
    assert set(used) == {rules.FAST_DUMPER}


# what libyaml writes otherwise than the pure-Python emitter, each found by comparing the two
DIFFERING = [
    "paged \U0001f6a8 on call",  # libyaml escapes characters beyond the BMP: "\U0001F6A8"
    "one\x85two",  # and breaks no line at U+0085 (NEL)
    "tab\tseparated " * 400,  # a double-quoted scalar past the width: libyaml folds it
]


@needs_libyaml
@pytest.mark.parametrize("text", DIFFERING, ids=range(len(DIFFERING)))
def test_strings_libyaml_writes_otherwise_are_written_as_before(text: str) -> None:
    data = {"groups": [{"name": text, "rules": [{"alert": "A", "annotations": {"x": text}}]}]}
    fast = yaml.dump(data, Dumper=rules.FAST_DUMPER, sort_keys=False, width=4096,
                     allow_unicode=True)  # fmt: skip
    assert rules.GENERATED + fast != pure_python(data)  # else this case tests nothing
    assert rules.dump(data) == pure_python(data)


TRICKY = "ab :#'\"\n\t-?{}[],&*!|>%@`\\é中\x7f\x85\xa0\u2028\u2029\ufeff\U0001f600\r\x1b"
texts = st.text(alphabet=st.sampled_from(TRICKY) | st.characters(), max_size=30) | st.builds(
    lambda text, times: text * times, st.text(alphabet=TRICKY, min_size=1, max_size=8),
    st.integers(1, 700),
)  # fmt: skip
values = st.recursive(
    texts | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(texts, values, max_size=5))
@example({"": None})  # the pure-Python emitter writes an empty key as "? ''"
@example({"\xa0" * 65: []})  # libyaml: a key of 128 UTF-8 bytes or more is a complex one
@example({"中" * 50: {"k": "中" * 600}})
def test_any_data_is_written_byte_for_byte_as_the_pure_python_emitter_writes_it(
    data: dict[str, Any],
) -> None:
    assert rules.dump(data) == pure_python(data)
