"""Packaging (the library side of ``stages/package.py``): the exported model into BentoML's
model store with the serve settings in its metadata, the Bento built from ``bentofile.yaml``
around it, and the Bento exported to one archive that ``dvc pull`` + ``bentoml import``
serves on another machine.

Versions are content hashes, not BentoML's time-based ones: packaging the same model,
settings and code again finds the same model and Bento instead of piling up copies, and
``models/bento.json`` names the same tag.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import NotFound

from barseg.serve.settings import MODEL_FILES, ServeSettings

SERVICE = "barseg.serve.service:BarcodeSegmenter"
# File names the service looks for inside the BentoML model, by suffix of the source file:
# exported models only (a checkpoint would need torch and the training code in the Bento).
MODEL_FILE_NAMES = {Path(name).suffix: name for name, _ in MODEL_FILES}
ENGINE_FILE = "model.engine"  # in the build_trt stage's folder, when TensorRT built one
VERSION_LENGTH = 20  # hex digits of SHA-256: collisions need ~2^40 versions of one name


def settings_from_params(section: Mapping[str, Any]) -> tuple[str, ServeSettings]:
    """The model/service name and the settings of params.yaml's ``serve`` section; an
    unknown key is an error rather than a setting silently ignored."""
    known = {f.name for f in fields(ServeSettings)} | {"name"}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ValueError(f"serve: unknown keys {unknown}; known: {sorted(known)}")
    return str(section["name"]), ServeSettings.from_mapping(section)


def content_hash(paths: Iterable[Path], *texts: str) -> str:
    """SHA-256 over the files' names and bytes and the ``texts``, shortened for a tag."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    for text in texts:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:VERSION_LENGTH]


def model_files(onnx: Path, trt_dir: Path) -> list[Path]:
    """The ONNX model, and the TensorRT engine when the build_trt stage made one."""
    if not onnx.is_file():
        raise FileNotFoundError(f"{onnx}: no such ONNX model; run `dvc repro export_onnx`")
    engine = trt_dir / ENGINE_FILE
    return [onnx, engine] if engine.is_file() else [onnx]


def save_model(name: str, files: list[Path], settings: ServeSettings) -> bentoml.Tag:
    """``files`` (renamed ``model.onnx`` / ``model.engine``) as the BentoML
    model ``name``, versioned by their content and the settings; an existing one is reused."""
    names = []
    for path in files:
        if path.suffix not in MODEL_FILE_NAMES:
            raise ValueError(f"{path}: not a model file the service runs ({', '.join(MODEL_FILE_NAMES)})")
        names.append(MODEL_FILE_NAMES[path.suffix])
    metadata = settings.to_metadata()
    tag = bentoml.Tag(name, content_hash(files, json.dumps(metadata, sort_keys=True)))
    try:
        return bentoml.models.get(tag).tag
    except NotFound:
        pass
    with bentoml.models.create(tag, labels={"project": "barseg"}, metadata=metadata) as model:
        for path, target in zip(files, names, strict=True):
            shutil.copyfile(path, model.path_of(target))
    return tag


def build_bento(name: str, model: bentoml.Tag, bentofile: Path, build_ctx: Path) -> bentoml.Tag:
    """``bentoml build`` of ``bentofile`` with the build argument ``model``. The version
    hashes the model tag, the bentofile and the package's code (a superset of what the
    bentofile includes: a change elsewhere only makes a new version)."""
    sources = sorted((build_ctx / "src" / "barseg").rglob("*.py"))
    version = content_hash([bentofile, *sources], str(model), *(str(p.relative_to(build_ctx)) for p in sources))
    tag = bentoml.Tag(name, version)
    try:
        return bentoml.bentos.get(tag).tag
    except NotFound:
        pass
    bento = bentoml.bentos.build_bentofile(
        str(bentofile), name=name, version=version, build_ctx=str(build_ctx), args={"model": str(model)}
    )
    return bento.tag


def package(
    name: str,
    settings: ServeSettings,
    files: list[Path],
    out: Path,
    archive: Path,
    bentofile: Path = Path("bentofile.yaml"),
    build_ctx: Path = Path("."),
) -> dict[str, Any]:
    """Model, Bento, archive; ``out`` gets ``{"tag": "name:version", "model_tag", ...}``, the
    same for the same inputs (the archive's bytes are not: tar records export times)."""
    model = save_model(name, files, settings)
    bento = build_bento(name, model, bentofile, build_ctx)
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.unlink(missing_ok=True)
    bentoml.bentos.export_bento(bento, str(archive.resolve()))  # a relative path is taken from / by fsspec
    report = {
        "tag": str(bento),
        "model_tag": str(model),
        "model_files": [MODEL_FILE_NAMES[p.suffix] for p in files],
        "service": SERVICE,
        "settings": settings.to_metadata(),
        "archive": str(archive),
        "serve": f"bentoml serve {bento}",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report
