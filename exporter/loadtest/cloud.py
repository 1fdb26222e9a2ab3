"""The cloud provider, region and instance type, found without the network.

DMI (``/sys/class/dmi/id``) names the provider:

=========  ==================================================================================
aws        sys_vendor ``Amazon EC2`` (Nitro; product_name is then the instance type, e.g.
           ``m5.large``), or ``amazon`` in bios_version/bios_vendor/product_version (Xen)
azure      sys_vendor ``Microsoft Corporation`` and product_name ``Virtual Machine`` with Azure's
           chassis_asset_tag ``7783-7084-3265-9085-8269-3286-77`` (or no readable tag); the same
           pair with another tag is plain Hyper-V, not Azure
gcp        sys_vendor ``Google`` or product_name ``Google Compute Engine``
oci        chassis_asset_tag ``OracleCloud.com``
=========  ==================================================================================

cloud-init's cached, world-readable ``/run/cloud-init/instance-data.json`` adds what DMI lacks:
``v1.region`` and, per provider, the instance type from the datasource's metadata. Nothing here
contacts a metadata service; what is not found is None and may be given by flags, which win.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exporter.loadtest.contract import INSTANCE_TYPE, PROVIDERS, REGION, Text, fits

__all__ = ["PROVIDERS", "CloudFacts", "choose", "detect", "from_cloud_init", "from_dmi"]

DMI_DIR = "/sys/class/dmi/id"
CLOUD_INIT_DATA = "/run/cloud-init/instance-data.json"
DMI_FIELDS = (
    "sys_vendor", "product_name", "product_version", "bios_vendor", "bios_version",
    "board_asset_tag", "chassis_asset_tag",
)  # fmt: skip
AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
OCI_ASSET_TAG = "OracleCloud.com"
EC2_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")  # m5.large, c7g.metal, u-6tb1.metal
CLOUD_INIT_NAMES = {"aws": "aws", "ec2": "aws", "azure": "azure", "gce": "gcp", "oracle": "oci"}


@dataclass(frozen=True)
class CloudFacts:
    provider: str | None = None
    region: str | None = None
    instance_type: str | None = None

    def filled_from(self, other: CloudFacts) -> CloudFacts:
        """These facts, with the gaps taken from ``other`` when it is about the same provider."""
        if self.provider and other.provider and self.provider != other.provider:
            return self
        return CloudFacts(
            self.provider or other.provider,
            self.region or other.region,
            self.instance_type or other.instance_type,
        )


def read_dmi(directory: str = DMI_DIR) -> dict[str, str]:
    """The DMI fields this module uses; an unreadable or absent field is left out."""
    found = {}
    for name in DMI_FIELDS:
        try:
            with open(os.path.join(directory, name), encoding="utf-8", errors="replace") as handle:
                found[name] = handle.read().strip()
        except OSError:
            continue
    return found


def from_dmi(dmi: Mapping[str, str]) -> CloudFacts:
    vendor = dmi.get("sys_vendor", "")
    product = dmi.get("product_name", "")
    chassis_tag = dmi.get("chassis_asset_tag")
    if chassis_tag == OCI_ASSET_TAG:
        return CloudFacts("oci")
    xen_amazon = any(
        "amazon" in dmi.get(name, "").lower()
        for name in ("bios_version", "bios_vendor", "product_version")
    )
    if vendor == "Amazon EC2" or xen_amazon:
        return CloudFacts("aws", instance_type=_text(product) if EC2_TYPE.match(product) else None)
    if vendor == "Google" or product == "Google Compute Engine":
        return CloudFacts("gcp")
    hyper_v = vendor == "Microsoft Corporation" and product == "Virtual Machine"
    if hyper_v and chassis_tag in (None, "", AZURE_ASSET_TAG):
        return CloudFacts("azure")
    return CloudFacts()


def _text(value: Any, rule: Text = INSTANCE_TYPE) -> str | None:
    """``value`` when the result format takes it as ``rule`` (a region or instance type);
    anything else found is dropped."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if fits(rule, value) else None


def _path(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def from_cloud_init(data: Mapping[str, Any]) -> CloudFacts:
    name = _text(_path(data, "v1", "cloud_name")) or _text(_path(data, "v1", "cloud-name"))
    provider = CLOUD_INIT_NAMES.get((name or "").lower())
    region = _text(_path(data, "v1", "region"), REGION)
    meta = _path(data, "ds", "meta_data")
    instance_type = None
    if provider == "aws":
        instance_type = _text(_path(meta, "instance-type"))
    elif provider == "azure":
        instance_type = _text(_path(meta, "imds", "compute", "vmSize"))
    elif provider == "gcp":
        machine = _path(meta, "instance", "machineType")
        instance_type = _text(machine.rsplit("/", 1)[-1]) if isinstance(machine, str) else None
    elif provider == "oci":
        instance_type = _text(_path(meta, "shape"))
    return CloudFacts(provider, region, instance_type)


def read_cloud_init(path: str = CLOUD_INIT_DATA) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def detect(dmi_dir: str = DMI_DIR, cloud_init_file: str = CLOUD_INIT_DATA) -> CloudFacts:
    return from_dmi(read_dmi(dmi_dir)).filled_from(
        from_cloud_init(read_cloud_init(cloud_init_file))
    )


def choose(given: CloudFacts, detected: CloudFacts) -> CloudFacts:
    """Facts given by flags win; detection fills the rest (unless the flags name another provider)."""
    return given.filled_from(detected)
