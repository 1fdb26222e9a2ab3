"""The original system's published load-test results, shipped as upload documents.

provisioning/examples/loadtests/*.json hold the four perfcpumeasure training series of the
reference (section 3.3) in the ``perfanalysis.loadtest/1`` format. What the original did not
record is stated, not invented: busy% per level was not kept (the target is given and one
repeat with no CV), and its 100 % level was extrapolated (units per second x vCPUs), not
measured. Each run carries that as its note.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenants.access import Actor, require
from tenants.loadtests.contract import parse_bytes
from tenants.loadtests.models import LoadTestRun
from tenants.loadtests.runs import Upload, document_digest, store_run
from tenants.models import Tenant

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "provisioning" / "examples" / "loadtests"
ORIGINAL = ("From the original PerfAnalysis ({source}). Busy% per level was not recorded (the "
            "target is shown) and its 100% level was extrapolated (units per second x vCPUs), "
            "not measured.")  # fmt: skip
LABELS = {
    "original-oci-e5-flex-2vcpu.json": (
        "Original: OCI E5.Flex 2 vCPU", "PC1 e2e-test/oci_training.json"),
    "original-azure-d4s-v3-4vcpu.json": (
        "Original: Azure D4s_v3 4 vCPU", "PC1 e2e-test/pcd_server_01_training.json"),
    "original-oci-perftest-vm-02.json": (
        "Original: OCI perftest-vm-02", "PC1 e2e-test/results_20260110_001851/training.json"),
    "original-azure-pcc-test-vm.json": (
        "Original: Azure pcc-test-vm", "PC1 e2e-test/results_20260110_001851/azure_training.json"),
}  # fmt: skip


def load_examples(
    db: Session, actor: Actor, tenant: Tenant, directory: Path | str = DEFAULT_DIR
) -> int:
    """Store every example file not yet in the tenant; returns how many were stored."""
    require(db, actor, tenant, "analyze")
    stored = 0
    for path in sorted(Path(directory).glob("*.json")):
        document = parse_bytes(path.read_bytes())
        known = db.scalar(select(LoadTestRun.id).where(
            LoadTestRun.tenant_id == tenant.id,
            LoadTestRun.document_sha256 == document_digest(document)))  # fmt: skip
        if known is not None:
            continue
        label, source = LABELS.get(path.name, (path.stem, path.name))
        upload = Upload(actor, "example", label=label, notes=ORIGINAL.format(source=source))
        store_run(db, tenant, document, upload)
        stored += 1
    return stored
