"""Which tenants the Prometheus beside the rules scrapes, to catch a tenant slug with no hosts.

The rules select a tenant's hosts by the ``tenant`` label of their targets. A slug in
thresholds.yaml that no target carries judges nobody, and when it is a misspelling (``acmee:``
for ``acme:``) the real tenant silently keeps the defaults. The Prometheus configuration that loads
the rules (``rules/`` beside ``prometheus.yml``, as in provisioning/prometheus) lists targets in
``prometheus.yml``'s static_configs and in the files its file_sd_configs name (``targets/*.yml``:
one file per tenant by convention). Prometheus takes a target's ``tenant`` from the labels the
file gives it, never from the file's name (the configuration relabels nothing), so the labels are
what is checked: a ``targets/globex.yml`` whose targets are labelled ``tenant: globx``, or one
that lists no target (``[]``), leaves globex unscraped, and is warned about as such. A target file
Prometheus would refuse (unreadable, not YAML or JSON, not a list of ``{targets, labels}`` groups)
is warned about with its problem: Prometheus scrapes none of its targets (or keeps those it read
before the file broke). Files are read as Prometheus 2.42 reads them: a YAML file's first
document only (whatever follows a ``---`` is ignored); a JSON group's ``targets`` and ``labels``
keys in any case (``"Targets"``: Go's encoding/json matches field names so), the last of two
taking the field; a null or empty target dropped alone (Prometheus logs "no address" and keeps
the rest of the group), which is warned about. When a job relabels the ``tenant`` label, what it
becomes cannot be told from the files, and tenants are not checked. Other installs (Kubernetes, a
Prometheus of one's own) keep no such files beside the rules: with neither there, nothing is
checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from perfanalysis import strictyaml
from perfanalysis.alerting.thresholds import Thresholds

PROMETHEUS_YML = "prometheus.yml"
TARGETS_DIR = "targets"
# without a prometheus.yml, the files its file_sd_configs would name (Prometheus reads these three)
DEFAULT_PATTERNS = ("targets/*.yml", "targets/*.yaml", "targets/*.json")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
GROUP_KEYS = ("targets", "labels")
LONG_S = "\u017f"  # LATIN SMALL LETTER LONG S: Go's case folding matches it to "s"


class _TargetsLoader(strictyaml.StrictSafeLoader):
    """yaml.v2 as Prometheus reads a target file into strings: a plain scalar is its text
    (``tenant: yes`` is the label value "yes", ``123`` is "123"); null stays None."""


def _as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):  # an explicit tag on a collection
        raise yaml.constructor.ConstructorError(None, None, f"{node.tag} on a collection",
                                                node.start_mark)  # fmt: skip
    return str(loader.construct_scalar(node))


for _tag in ("bool", "int", "float", "timestamp"):
    _TargetsLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _as_text)


class TargetFileError(ValueError):
    """A target file Prometheus would refuse; the message says why."""


@dataclass
class TargetFile:
    """What one file_sd file gives Prometheus: its groups' tenants, counted per target."""

    path: Path
    targets: int = 0  # with an address: those Prometheus scrapes
    tenants: dict[str, int] = field(default_factory=dict)  # tenant label -> targets
    unlabelled: int = 0  # targets without a tenant label
    no_address: list[int] = field(default_factory=list)  # the group of each null or "" target


@dataclass
class Scraped:
    """The tenants the targets carry (None: a job relabels tenant, so they cannot be told), the
    target files Prometheus reads, and problems with them (``PATH: warning: ...``)."""

    tenants: set[str] | None
    files: dict[Path, TargetFile]
    problems: list[str]
    refused: set[Path] = field(default_factory=set)


def _config(path: Path) -> tuple[Any, str | None]:
    """prometheus.yml's YAML, or None and why it cannot be read."""
    try:
        return strictyaml.load(path.read_text(encoding="utf-8")), None
    except OSError as exc:
        return None, exc.strerror or str(exc)
    except UnicodeDecodeError:
        return None, "it is not UTF-8 text"
    except yaml.YAMLError as exc:
        return None, _yaml_problem(exc)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: what, and the line and column."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return str(exc).replace("\n", " ")


def _load_target_file(path: Path) -> Any:
    """The file's groups as Prometheus parses them: JSON by its extension, else YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TargetFileError(f"cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TargetFileError("it is not UTF-8 text") from None
    if path.suffix.lower() == ".json":
        try:
            document = json.loads(text, object_pairs_hook=_JSONObject)
        except json.JSONDecodeError as exc:
            raise TargetFileError(
                f"not JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        except RecursionError:
            raise TargetFileError("not JSON: nested too deeply") from None
        if not isinstance(document, list):
            return document
        return [_go_group(group) if isinstance(group, _JSONObject) else group
                for group in document]  # fmt: skip
    loader = _TargetsLoader(text)
    try:
        return loader.get_data()  # the first document (None if none), as yaml.v2 reads it
    except yaml.YAMLError as exc:
        raise TargetFileError(f"not YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise TargetFileError("not YAML: nested too deeply") from None
    finally:
        loader.dispose()


class _JSONObject(dict[str, Any]):
    """A JSON object as Python reads it (a repeated key's last value), keeping its pairs."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs


def _go_group(group: _JSONObject) -> dict[str, Any]:
    """A group's keys as encoding/json decodes them into Prometheus' struct: ``targets`` and
    ``labels`` matched without regard to case, the last of two that match taking the field."""
    decoded: dict[str, Any] = {}
    for key, value in group.pairs:
        decoded[_go_field_name(key)] = value
    return decoded


def _go_field_name(key: str) -> str:
    """The field of GROUP_KEYS that encoding/json matches ``key`` to, else ``key`` itself."""
    for name in GROUP_KEYS:
        if len(key) == len(name) and all(
            char in (letter, letter.upper()) or (letter == "s" and char == LONG_S)
            for char, letter in zip(key, name, strict=True)
        ):
            return name
    return key


def _groups(document: Any) -> Iterable[tuple[list[str], dict[str, str]]]:
    """Each group's targets (null ones as "") and labels, checked as Prometheus checks them;
    TargetFileError if it would refuse the file. An empty document (no text, only comments)
    lists no group."""
    if document is None:
        return
    if not isinstance(document, list):
        raise TargetFileError(
            "it must be a list of target groups ('- targets: [...]' with 'labels: {...}'), not "
            f"{_kind(document)}"
        )
    for number, group in enumerate(document, 1):
        where = f"group {number}"
        if not isinstance(group, dict):
            raise TargetFileError(f"{where} must be a mapping of targets and labels, not "
                                  f"{_kind(group)}")  # fmt: skip
        unknown = [str(key) for key in group if key not in GROUP_KEYS]
        if unknown:
            raise TargetFileError(f"{where}: unknown key {unknown[0]!r} (a group has targets and "
                                  "labels only)")  # fmt: skip
        targets = group.get("targets")
        targets = [] if targets is None else targets
        if not isinstance(targets, list) or not all(t is None or isinstance(t, str)
                                                    for t in targets):  # fmt: skip
            raise TargetFileError(f"{where}: targets must be a list of host:port strings")
        targets = ["" if target is None else target for target in targets]  # as Go decodes null
        labels = group.get("labels")
        labels = {} if labels is None else labels
        if not isinstance(labels, dict):
            raise TargetFileError(f"{where}: labels must be a mapping, not {_kind(labels)}")
        checked = {}
        for name, value in labels.items():
            if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
                raise TargetFileError(f"{where}: {name!r} is not a valid label name")
            if value is None:  # yaml.v2 and encoding/json leave the string empty
                value = ""
            if not isinstance(value, str):
                raise TargetFileError(f"{where}: label {name}: the value must be a string, not "
                                      f"{_kind(value)}")  # fmt: skip
            checked[name] = value
        yield targets, checked


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    kinds = {dict: "a mapping", list: "a list", str: "a string"}
    return next((kind for type_, kind in kinds.items() if isinstance(value, type_)), repr(value))


def read_target_file(path: Path) -> TargetFile:
    """The tenants of a file_sd file's targets; TargetFileError if Prometheus would refuse it."""
    found = TargetFile(path)
    for number, (targets, labels) in enumerate(list(_groups(_load_target_file(path))), 1):
        found.no_address.extend(number for target in targets if not target)
        targets = [target for target in targets if target]
        found.targets += len(targets)
        tenant = labels.get("tenant", "")
        if not targets:
            continue
        if tenant:  # an empty value is no label, to Prometheus
            found.tenants[tenant] = found.tenants.get(tenant, 0) + len(targets)
        else:
            found.unlabelled += len(targets)
    return found


def _static_tenants(groups: Any) -> Iterable[str]:
    """The ``tenant`` labels of a static_configs' groups that list a target."""
    for group in groups if isinstance(groups, list) else []:
        labels = group.get("labels") if isinstance(group, dict) else None
        tenant = labels.get("tenant") if isinstance(labels, dict) else None
        if isinstance(tenant, str) and tenant and group.get("targets"):
            yield tenant


def _relabels_tenant(job: dict[str, Any]) -> bool:
    """Whether the job's relabelling may write the tenant label (then the files do not say)."""
    for key in ("relabel_configs", "metric_relabel_configs"):
        rules = job.get(key)
        for rule in rules if isinstance(rules, list) else []:
            if not isinstance(rule, dict):
                continue
            if rule.get("target_label") == "tenant" or rule.get("action") == "labelmap":
                return True
    return False


def _file_patterns(jobs: list[Any]) -> list[str]:
    patterns: list[str] = []
    for job in jobs:
        discoveries = job.get("file_sd_configs") if isinstance(job, dict) else None
        for discovery in discoveries if isinstance(discoveries, list) else []:
            files = discovery.get("files") if isinstance(discovery, dict) else None
            if isinstance(files, list):
                patterns.extend(pattern for pattern in files if isinstance(pattern, str))
    return patterns


def _matching(prometheus_dir: Path, patterns: Iterable[str]) -> list[Path]:
    """The files the patterns name, relative ones against prometheus.yml's directory as
    Prometheus resolves them; each once."""
    found: dict[Path, None] = {}
    for pattern in patterns:
        if Path(pattern).is_absolute():
            anchor, relative = Path(Path(pattern).anchor), str(Path(pattern).relative_to("/"))
        else:
            anchor, relative = prometheus_dir, pattern
        for path in sorted(anchor.glob(relative)):
            found.setdefault(path)
    return list(found)


def scrape(prometheus_dir: Path) -> Scraped | None:
    """What Prometheus configured in ``prometheus_dir`` scrapes; None when the directory holds
    neither a prometheus.yml nor a targets directory (nothing to check against)."""
    config, targets = prometheus_dir / PROMETHEUS_YML, prometheus_dir / TARGETS_DIR
    if not config.is_file() and not targets.is_dir():
        return None
    problems: list[str] = []
    tenants: set[str] | None = set()
    patterns: list[str] = list(DEFAULT_PATTERNS)
    if config.is_file():
        document, problem = _config(config)
        if problem is not None:
            problems.append(f"{config}: warning: cannot read it ({problem}): Prometheus would "
                            f"refuse it; the files in {targets} are checked instead")  # fmt: skip
        jobs = document.get("scrape_configs") if isinstance(document, dict) else None
        if problem is None:
            jobs = jobs if isinstance(jobs, list) else []
            patterns = _file_patterns(jobs)
            for job in jobs:
                if not isinstance(job, dict):
                    continue
                if _relabels_tenant(job):
                    tenants = None
                if tenants is not None:
                    tenants.update(_static_tenants(job.get("static_configs")))
    files: dict[Path, TargetFile] = {}
    refused: set[Path] = set()
    for path in _matching(prometheus_dir, patterns):
        try:
            files[path] = found = read_target_file(path)
        except TargetFileError as exc:
            refused.add(path)
            problems.append(f"{path}: warning: Prometheus refuses this target file: {exc}; it "
                            "scrapes none of its targets (or keeps those it read before the file "
                            "broke)")  # fmt: skip
            continue
        if found.no_address:
            problems.append(f"{path}: warning: {_no_address(found.no_address)}")
    if tenants is not None:
        for found in files.values():
            tenants.update(found.tenants)
    return Scraped(tenants, files, problems, refused)


def scraped_tenants(prometheus_dir: Path) -> set[str] | None:
    """The tenant labels the targets carry; None when there is nothing to check against, or a
    job relabels tenant."""
    scraped = scrape(prometheus_dir)
    return None if scraped is None else scraped.tenants


def unscraped_warnings(thresholds: Thresholds, prometheus_dir: Path) -> list[str]:
    """``PATH: warning: ...`` for each target file Prometheus would refuse, and
    ``FILE: tenants.<slug>: warning: ...`` for each listed tenant no target carries."""
    scraped = scrape(prometheus_dir)
    if scraped is None:
        return []
    warnings = list(scraped.problems)
    if scraped.tenants is None:
        return warnings
    targets = prometheus_dir / TARGETS_DIR
    config = prometheus_dir / PROMETHEUS_YML
    for slug in sorted(thresholds.tenants):
        if slug in scraped.tenants:
            continue
        named = [found for path, found in scraped.files.items() if path.stem == slug]
        if named:
            said = "; ".join(_contents(found) for found in named)
            if any(found.targets for found in named):
                said += "; Prometheus takes a target's tenant from its labels, not the file's name"
            warnings.append(
                f"{thresholds.source}: tenants.{slug}: warning: no Prometheus target carries "
                f'tenant="{slug}" ({said}; no target in {config} is labelled so either), so these '
                "thresholds judge no host; if the slug is misspelt, the tenant's hosts get the "
                f"defaults. List its hosts in {named[0].path} with labels: {{tenant: {slug}}}, "
                "or ignore this if another Prometheus scrapes them"
            )
            continue
        broken = sorted(path for path in scraped.refused if path.stem == slug)
        reason = (
            f"{broken[0]} is refused, see above"
            if broken
            else f"there is no {targets / f'{slug}.yml'}"
        )
        warnings.append(
            f"{thresholds.source}: tenants.{slug}: warning: no Prometheus target carries "
            f'tenant="{slug}" ({reason}, and no target in '
            f"{config} is labelled so), so these thresholds judge no host; "
            "if the slug is misspelt, the tenant's hosts get the defaults. List its hosts in that "
            "file, or ignore this if another Prometheus scrapes them"
        )
    return warnings


def _no_address(groups: list[int]) -> str:
    """What Prometheus does with the null or empty targets of these groups (one per target)."""
    numbers = ", ".join(str(number) for number in dict.fromkeys(groups))
    count = len(groups)
    many = count > 1
    return (
        f"{count} target{'s' if many else ''} with no address (null or empty) in "
        f"group{'s' if len(set(groups)) > 1 else ''} {numbers}: Prometheus drops "
        f'{"them" if many else "it"} (its log says "no address"), not the rest of the group'
    )


def _contents(found: TargetFile) -> str:
    """What a target file named after a tenant gives Prometheus instead of the tenant's."""
    if not found.targets:
        return f"{found.path} lists no target"
    parts = [f"{count} labelled tenant={tenant!r}".replace("'", '"')
             for tenant, count in sorted(found.tenants.items())]  # fmt: skip
    if found.unlabelled:
        parts.append(f"{found.unlabelled} without a tenant label")
    total = found.targets
    return f"{found.path} lists {total} target{'s' if total != 1 else ''}: " + ", ".join(parts)
