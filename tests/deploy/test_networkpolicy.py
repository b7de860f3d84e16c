"""The NetworkPolicies around the Dask control plane, checked offline: the scheduler and the workers are
selected, and only our own pods (by their labels) may reach them."""

from __future__ import annotations

import pytest


def matches(selector: dict, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics: every matchLabels pair and every matchExpression hold."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for rule in selector.get("matchExpressions") or []:
        key, op, values = rule["key"], rule["operator"], rule.get("values", [])
        found = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
                 "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not found:
            return False
    return True


def pod_labels(workloads) -> dict[str, dict[str, str]]:
    return {w.name: w.doc["spec"]["template"]["metadata"]["labels"] for w in workloads}


def policy(resources, name: str) -> dict:
    found = {r.name: r.doc for r in resources if r.kind == "NetworkPolicy"}
    assert name in found, sorted(found)
    return found[name]["spec"]


def admitted(spec: dict, labels: dict[str, str]) -> bool:
    """Whether a pod of this namespace with `labels` may open a connection to the policy's pods."""
    for rule in spec["ingress"]:
        for peer in rule["from"]:
            assert set(peer) == {"podSelector"}, f"only pods of this namespace, by label: {peer}"
            if matches(peer["podSelector"], labels):
                return True
    return False


SUBMITTER = {"app.kubernetes.io/part-of": "bl-reservoir", "app.kubernetes.io/component": "submitter"}
STRANGERS = [{}, {"app": "jupyter"}, {"app.kubernetes.io/part-of": "bl-reservoir"},
             {"app.kubernetes.io/component": "worker"}, {"app.kubernetes.io/component": "web"},
             {"app.kubernetes.io/part-of": "other", "app.kubernetes.io/component": "worker"}]


def test_only_our_pods_reach_the_scheduler(resources, workloads):
    spec = policy(resources, "dask-scheduler")
    labels = pod_labels(workloads)
    assert spec["policyTypes"] == ["Ingress"]
    assert [name for name, found in labels.items() if matches(spec["podSelector"], found)] == ["dask-scheduler"]
    assert {name for name, found in labels.items() if admitted(spec, found)} == {"bl-scale", "bl-scale-gpu", "bl-web"}
    assert admitted(spec, SUBMITTER)
    for stranger in STRANGERS:
        assert not admitted(spec, stranger), stranger
    # every port the scheduler serves is covered by a rule, and nothing is open without one
    (container,) = next(w for w in workloads if w.name == "dask-scheduler").pod["containers"]
    served = {p["name"] for p in container["ports"]}
    assert all(rule.get("ports") for rule in spec["ingress"])
    assert {p["port"] for rule in spec["ingress"] for p in rule["ports"]} == served == {"scheduler", "dashboard"}


def test_only_our_pods_reach_the_workers(resources, workloads):
    spec = policy(resources, "dask-workers")
    labels = pod_labels(workloads)
    assert spec["policyTypes"] == ["Ingress"]
    assert {name for name, found in labels.items() if matches(spec["podSelector"], found)} == \
        {"bl-scale", "bl-scale-gpu"}
    assert {name for name, found in labels.items() if admitted(spec, found)} == \
        {"dask-scheduler", "bl-scale", "bl-scale-gpu", "bl-web"}
    for stranger in STRANGERS:
        assert not admitted(spec, stranger), stranger


@pytest.mark.parametrize("selector, labels, expected", [
    ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
    ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
    ({"matchExpressions": [{"key": "c", "operator": "In", "values": ["x", "y"]}]}, {"c": "y"}, True),
    ({"matchExpressions": [{"key": "c", "operator": "In", "values": ["x"]}]}, {}, False),
    ({"matchExpressions": [{"key": "c", "operator": "DoesNotExist"}]}, {}, True),
])
def test_the_selector_matcher_itself(selector, labels, expected):
    assert matches(selector, labels) is expected
