"""deploy/kubernetes/ and docker-compose.yml, validated offline against their schemas and linted.

Kubernetes' own kinds are checked with the schemas ``kubernetes-validate`` ships, KEDA's with its
released CRDs and the compose file with the Compose Specification's schema, both kept in
tests/schemas/ (where they come from is in tests/schemas/README.md). Then what the schemas cannot
know: the settings that have to agree with each other and with docs/.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from yamllint import config as yamllint_config
from yamllint import linter

from plotjobs.config import Settings
from tests.support.processes import PROJECT_ROOT

KUBERNETES = PROJECT_ROOT / "deploy" / "kubernetes"
SCHEMAS = PROJECT_ROOT / "tests" / "schemas"
# The oldest Kubernetes the manifests claim to work on, and the newest the package knows.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
KEDA_CRDS = {
    "ScaledObject": "keda-v2.20.2-scaledobjects.yaml",
    "TriggerAuthentication": "keda-v2.20.2-triggerauthentications.yaml",
}
# docs/benchmarks.md: a render worker's RSS over 2,000 jobs, and the supervisor's (measured for this file).
WORKER_RSS_MB = 141
SUPERVISOR_RSS_MB = 48


def _manifest_files() -> list[Path]:
    return sorted(KUBERNETES.rglob("*.yaml"))


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in _manifest_files():
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                where = f"{path.relative_to(KUBERNETES)}:{document['kind']}/{document['metadata']['name']}"
                found.append((where, document))
    return found


DOCUMENTS = _documents()


def _objects(kind: str) -> dict[str, dict[str, Any]]:
    return {document["metadata"]["name"]: document for _, document in DOCUMENTS if document["kind"] == kind}


def test_the_manifests_are_there() -> None:
    kinds = {(document["kind"], document["metadata"]["name"]) for _, document in DOCUMENTS}
    assert {
        ("Deployment", "plotjobs-web"),
        ("Service", "plotjobs-web"),
        ("Deployment", "plotjobs-worker"),
        ("ScaledObject", "plotjobs-worker"),
        ("PodDisruptionBudget", "plotjobs-web"),
        ("PodDisruptionBudget", "plotjobs-worker"),
        ("NetworkPolicy", "redis-clients"),
        ("Secret", "plotjobs"),
        ("ConfigMap", "plotjobs"),
        ("Deployment", "plotjobs-bridge"),
        ("StatefulSet", "redis"),
    } <= kinds


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("where", "document"), [item for item in DOCUMENTS if item[1]["kind"] not in KEDA_CRDS])
def test_every_kubernetes_object_validates_strictly(where: str, document: dict[str, Any], version: str) -> None:
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{where} is not a valid Kubernetes {version} object: {error.message} at {list(error.path)}")


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema refusing unknown fields where it lists the properties, as the API server's strict validation does."""
    schema = copy.deepcopy(schema)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            listed = "properties" in node and "additionalProperties" not in node
            if listed and not node.get("x-kubernetes-preserve-unknown-fields"):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


def _crd_schema(kind: str, api_version: str) -> dict[str, Any]:
    crd = yaml.safe_load((SCHEMAS / KEDA_CRDS[kind]).read_text())
    assert crd["spec"]["names"]["kind"] == kind
    group, _, version = api_version.partition("/")
    assert crd["spec"]["group"] == group
    [served] = [entry for entry in crd["spec"]["versions"] if entry["name"] == version and entry["served"]]
    return _closed(served["schema"]["openAPIV3Schema"])


@pytest.mark.parametrize(("where", "document"), [item for item in DOCUMENTS if item[1]["kind"] in KEDA_CRDS])
def test_keda_objects_validate_against_kedas_released_crds(where: str, document: dict[str, Any]) -> None:
    schema = _crd_schema(document["kind"], document["apiVersion"])
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=lambda error: list(error.path))
    assert not errors, f"{where}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_crd_check_refuses_a_misspelt_field() -> None:
    scaled = copy.deepcopy(_objects("ScaledObject")["plotjobs-worker"])
    scaled["spec"]["minReplicas"] = 1
    assert not jsonschema.Draft7Validator(_crd_schema("ScaledObject", scaled["apiVersion"])).is_valid(scaled)


def _yamllint(path: Path) -> list[str]:
    rules = yamllint_config.YamlLintConfig(file=str(PROJECT_ROOT / ".yamllint.yaml"))
    return [f"{path.name}:{problem.line}: {problem.desc} ({problem.rule})"
            for problem in linter.run(path.read_text(), rules, str(path))]  # fmt: skip


@pytest.mark.parametrize("path", [*_manifest_files(), PROJECT_ROOT / "docker-compose.yml"], ids=lambda path: path.name)
def test_yaml_lints_clean(path: Path) -> None:
    assert _yamllint(path) == []


def test_the_compose_file_validates_against_the_compose_specification() -> None:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(compose))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
    broken = copy.deepcopy(compose)
    broken["services"]["web"]["stop_grace_periodd"] = "40s"
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)


# What the schemas cannot know.


def _pod(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = _objects("Deployment")[name]["spec"]["template"]["spec"]
    return spec


def _container(name: str) -> dict[str, Any]:
    [container] = _pod(name)["containers"]
    return container


def _config() -> dict[str, str]:
    data: dict[str, str] = _objects("ConfigMap")["plotjobs"]["data"]
    return data


def test_the_configmap_holds_valid_settings() -> None:
    settings = Settings(**_config())
    assert settings.queues == ("high", "default", "low")


def test_web_probes_liveness_on_healthz_and_readiness_on_readyz() -> None:
    web = _container("plotjobs-web")
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["command"][0] == "gunicorn" and "wsgi:app" in web["command"]
    service = _objects("Service")["plotjobs-web"]
    assert service["spec"]["selector"].items() <= _objects("Deployment")["plotjobs-web"]["spec"]["template"][
        "metadata"]["labels"].items()  # fmt: skip


def test_workers_stop_warm_and_get_longer_than_a_job_may_run() -> None:
    pod, worker = _pod("plotjobs-worker"), _container("plotjobs-worker")
    assert pod["terminationGracePeriodSeconds"] > int(_config()["JOB_TIMEOUT"])
    assert worker["command"] == ["python", "worker.py"]
    pre_stop = " ".join(worker["lifecycle"]["preStop"]["exec"]["command"])
    # One SIGTERM to the supervisor, then wait for it: the kubelet's SIGTERM never becomes the second one.
    assert "kill -TERM 1;" in pre_stop and "while kill -0 1" in pre_stop
    assert worker["livenessProbe"]["exec"]["command"] == ["plotjobs", "workers", "--this-host", "--check"]


def test_worker_resources_come_from_the_measured_memory() -> None:
    resources = _container("plotjobs-worker")["resources"]
    processes = int(_config()["WORKER_PROCESSES"])
    request_mb = int(resources["requests"]["memory"].removesuffix("Mi"))
    limit_mb = int(resources["limits"]["memory"].removesuffix("Mi"))
    assert request_mb >= processes * WORKER_RSS_MB + SUPERVISOR_RSS_MB
    assert limit_mb >= processes * int(_config()["WORKER_MAX_MEMORY_MB"]) + SUPERVISOR_RSS_MB


def test_keda_scales_the_workers_on_every_rq_queue_list() -> None:
    scaled = _objects("ScaledObject")["plotjobs-worker"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == "plotjobs-worker"
    assert scaled["idleReplicaCount"] == 0 < scaled["minReplicaCount"] <= scaled["maxReplicaCount"]
    lists = [trigger["metadata"]["listName"] for trigger in scaled["triggers"] if trigger["type"] == "redis"]
    assert lists == [f"rq:queue:{name}" for name in Settings(**_config()).queues]
    authentication = _objects("TriggerAuthentication")
    for trigger in scaled["triggers"]:
        assert trigger["authenticationRef"]["name"] in authentication


def test_every_referenced_secret_key_and_configmap_exists() -> None:
    secret = _objects("Secret")["plotjobs"]["stringData"]
    for name in ("plotjobs-web", "plotjobs-worker", "plotjobs-bridge"):
        container = _container(name)
        assert container["envFrom"] == [{"configMapRef": {"name": "plotjobs"}}]
        for variable in container["env"]:
            reference = variable.get("valueFrom", {}).get("secretKeyRef")
            if reference and not reference.get("optional") and variable["name"] != "BROKER_URL":
                assert reference["key"] in secret, (name, reference)
    for trigger_authentication in _objects("TriggerAuthentication").values():
        for reference in trigger_authentication["spec"]["secretTargetRef"]:
            assert reference["name"] == "plotjobs" and reference["key"] in secret
    assert {"REDIS_URL", "DASHBOARD_USERNAME", "DASHBOARD_PASSWORD", "SECRET_KEY"} <= set(secret)


def _selected(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    return all(labels.get(rule["key"]) in rule["values"] for rule in selector.get("matchExpressions", []))


def test_only_web_workers_bridge_keda_and_redis_itself_reach_redis() -> None:
    policy = _objects("NetworkPolicy")["redis-clients"]["spec"]
    redis_labels = _objects("StatefulSet")["redis"]["spec"]["template"]["metadata"]["labels"]
    assert _selected(policy["podSelector"], redis_labels)
    [rule] = policy["ingress"]
    same_namespace = [peer["podSelector"] for peer in rule["from"] if "namespaceSelector" not in peer]
    for name in ("plotjobs-web", "plotjobs-worker", "plotjobs-bridge"):
        labels = _objects("Deployment")[name]["spec"]["template"]["metadata"]["labels"]
        assert any(_selected(selector, labels) for selector in same_namespace), name
    for outsider in ({"app.kubernetes.io/name": "plotjobs", "app.kubernetes.io/component": "debug"}, {"app": "other"}):
        assert not any(_selected(selector, outsider) for selector in same_namespace), outsider
    [keda] = [peer for peer in rule["from"] if "namespaceSelector" in peer]
    assert keda["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "keda"}
    assert {port["port"] for port in rule["ports"]} == {6379, 26379}


def test_disruption_budgets_cover_web_and_workers() -> None:
    budgets = _objects("PodDisruptionBudget")
    assert budgets["plotjobs-web"]["spec"]["minAvailable"] == 1
    assert budgets["plotjobs-web"]["spec"]["minAvailable"] < _objects("Deployment")["plotjobs-web"]["spec"]["replicas"]
    assert budgets["plotjobs-worker"]["spec"]["maxUnavailable"] == 1
    for name, budget in budgets.items():
        labels = _objects("Deployment")[name]["spec"]["template"]["metadata"]["labels"]
        assert _selected(budget["spec"]["selector"], labels)


def test_the_trial_redis_keeps_what_it_accepted_and_never_evicts() -> None:
    [redis] = _objects("StatefulSet")["redis"]["spec"]["template"]["spec"]["containers"]
    command = " ".join(redis["args"])
    assert "--appendonly yes" in command and "--maxmemory-policy noeviction" in command
    assert "--requirepass" in command


def test_the_kubernetes_check_refuses_a_misspelt_field() -> None:
    web = copy.deepcopy(_objects("Deployment")["plotjobs-web"])
    web["spec"]["template"]["spec"]["terminationGracePeriod"] = 40
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES_VERSIONS[0], strict=True)
