"""The deploy files, parsed: Kubernetes manifests, their pod templates, the Dockerfile (for tests/deploy)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
#: Kinds whose spec.template holds a pod.
WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet", "Job", "ReplicaSet"}


@dataclass(frozen=True)
class Resource:
    path: Path
    doc: dict

    @property
    def kind(self) -> str:
        return self.doc["kind"]

    @property
    def name(self) -> str:
        return self.doc["metadata"]["name"]

    @property
    def pod(self) -> dict | None:
        return self.doc["spec"]["template"]["spec"] if self.kind in WORKLOADS else None


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def load_resources() -> list[Resource]:
    return [Resource(path, doc) for path in manifest_files()
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def containers(pod: dict) -> list[dict]:
    return pod.get("initContainers", []) + pod["containers"]


def dockerfile_env() -> dict[str, str]:
    """ENV names and values of the Dockerfile's final stage (KEY=VALUE form, with line continuations)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    final = text.split("\nFROM ")[-1]
    env: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"(\w+)=(\S+)", line))
    return env


def dockerfile_cmd() -> str:
    lines = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD ")]
    return lines[-1].removeprefix("CMD ").strip()
