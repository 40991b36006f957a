"""The Bento's recipe against the code and the pinned environment."""

from __future__ import annotations

import yaml

from tests.code_graph import code_of
from tests.conftest import REPO

BENTOFILE = yaml.safe_load((REPO / "bentofile.yaml").read_text())


def test_the_bento_ships_every_module_the_service_imports() -> None:
    included = {p for pattern in BENTOFILE["include"] for p in REPO.glob(pattern)}
    # The Bento serves exported models only (serve.settings.MODEL_FILES): never the PyTorch runtime.
    service = REPO / "src/barseg/serve/service.py"
    needed = code_of(service, unused=frozenset({"barseg.infer.torch_runtime"})) | {service}
    assert sorted(str(p.relative_to(REPO)) for p in needed - included) == []


def test_the_bento_installs_the_versions_the_project_pins() -> None:
    pinned = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        pinned[name.lower().replace("_", "-")] = version
    for requirement in BENTOFILE["python"]["packages"]:
        name, sep, version = requirement.partition("==")
        assert sep, f"bentofile.yaml: {requirement} is not pinned to one version"
        assert pinned.get(name.lower()) == version, (
            f"bentofile.yaml: {requirement}, constraints.txt: {pinned.get(name.lower())}"
        )
