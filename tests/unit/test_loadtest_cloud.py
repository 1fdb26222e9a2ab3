"""Cloud provider, region and instance type from fake /sys/class/dmi/id trees and cloud-init data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter.loadtest.cloud import (
    AZURE_ASSET_TAG,
    CloudFacts,
    choose,
    detect,
    from_cloud_init,
    read_dmi,
)


def dmi_tree(root: Path, **fields: str) -> str:
    directory = root / "sys" / "class" / "dmi" / "id"
    directory.mkdir(parents=True)
    for name, value in fields.items():
        (directory / name).write_text(value + "\n")
    return str(directory)


# what each provider's guests show in DMI (values as the providers document and guests report them)
TREES = {
    "aws-nitro": (
        {"sys_vendor": "Amazon EC2", "product_name": "m5.large", "bios_vendor": "Amazon EC2",
         "board_asset_tag": "i-0123456789abcdef0", "chassis_asset_tag": "Amazon EC2"},
        CloudFacts("aws", None, "m5.large"),
    ),
    "aws-graviton-metal": (
        {"sys_vendor": "Amazon EC2", "product_name": "c7g.metal"},
        CloudFacts("aws", None, "c7g.metal"),
    ),
    "aws-xen": (
        {"sys_vendor": "Xen", "product_name": "HVM domU", "bios_version": "4.11.amazon",
         "product_version": "4.11.amazon"},
        CloudFacts("aws"),
    ),
    "azure": (
        {"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine",
         "chassis_asset_tag": AZURE_ASSET_TAG, "bios_vendor": "Microsoft Corporation"},
        CloudFacts("azure"),
    ),
    "hyper-v-on-premises": (
        {"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine",
         "chassis_asset_tag": "1234-5678-9012"},
        CloudFacts(),
    ),
    "gcp": (
        {"sys_vendor": "Google", "product_name": "Google Compute Engine", "bios_vendor": "Google"},
        CloudFacts("gcp"),
    ),
    "oci": (
        {"sys_vendor": "QEMU", "product_name": "Standard PC (i440FX + PIIX, 1996)",
         "chassis_asset_tag": "OracleCloud.com"},
        CloudFacts("oci"),
    ),
    "kvm-laptop": (
        {"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"},
        CloudFacts(),
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(TREES))
def test_dmi_trees(tmp_path: Path, name: str) -> None:
    fields, expected = TREES[name]
    directory = dmi_tree(tmp_path, **fields)
    assert detect(directory, str(tmp_path / "no-cloud-init.json")) == expected


def test_no_dmi_at_all(tmp_path: Path) -> None:
    assert read_dmi(str(tmp_path / "missing")) == {}
    assert detect(str(tmp_path / "missing"), str(tmp_path / "missing.json")) == CloudFacts()


def test_cloud_init_adds_the_region(tmp_path: Path) -> None:
    directory = dmi_tree(tmp_path, sys_vendor="Amazon EC2", product_name="t3.micro")
    data = {
        "v1": {"cloud_name": "aws", "region": "us-east-2", "availability_zone": "us-east-2b"},
        "ds": {"meta_data": {"instance-type": "t3.micro", "instance-id": "i-0abc"}},
    }
    (tmp_path / "instance-data.json").write_text(json.dumps(data))
    facts = detect(directory, str(tmp_path / "instance-data.json"))
    assert facts == CloudFacts("aws", "us-east-2", "t3.micro")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"v1": {"cloud_name": "azure", "region": "westeurope"},
             "ds": {"meta_data": {"imds": {"compute": {"vmSize": "Standard_D4s_v3"}}}}},
            CloudFacts("azure", "westeurope", "Standard_D4s_v3"),
        ),
        (
            {"v1": {"cloud_name": "gce", "region": "us-central1"},
             "ds": {"meta_data": {"instance": {
                 "machineType": "projects/123/machineTypes/n2-standard-4"}}}},
            CloudFacts("gcp", "us-central1", "n2-standard-4"),
        ),
        (
            {"v1": {"cloud_name": "oracle", "region": "us-phoenix-1"},
             "ds": {"meta_data": {"shape": "VM.Standard.E5.Flex"}}},
            CloudFacts("oci", "us-phoenix-1", "VM.Standard.E5.Flex"),
        ),
        ({"v1": {"cloud_name": "nocloud"}}, CloudFacts()),
        (  # values the admin app would refuse are dropped, not sent
            {"v1": {"cloud_name": "aws", "region": "us east\n"},
             "ds": {"meta_data": {"instance-type": "m5 large"}}},
            CloudFacts("aws"),
        ),
        ({"v1": "garbage", "ds": []}, CloudFacts()),
    ],
)  # fmt: skip
def test_cloud_init_per_provider(data: dict[str, object], expected: CloudFacts) -> None:
    assert from_cloud_init(data) == expected


def test_unreadable_cloud_init_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "instance-data.json").write_text("{not json")
    directory = dmi_tree(tmp_path, sys_vendor="Google")
    assert detect(directory, str(tmp_path / "instance-data.json")) == CloudFacts("gcp")


def test_flags_win_and_detection_fills_the_rest() -> None:
    detected = CloudFacts("aws", "us-east-2", "m5.large")
    assert choose(CloudFacts(None, None, "m5.xlarge"), detected) == CloudFacts(
        "aws", "us-east-2", "m5.xlarge"
    )
    assert choose(CloudFacts(), detected) == detected


def test_flags_naming_another_provider_take_nothing_from_detection() -> None:
    detected = CloudFacts("aws", "us-east-2", "m5.large")
    given = CloudFacts("oci", None, "VM.Standard.E5.Flex")
    assert choose(given, detected) == given
