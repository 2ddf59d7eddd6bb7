"""The Helm chart (deploy/helm/ecommerce), proven without a cluster.

Every values file under the chart's ci/ is linted and rendered with the real Helm library
(helm-python-sdk binds Helm's own Go code), every rendered object is validated against the
Kubernetes OpenAPI schemas in strict mode, and the objects are checked against one another:
selectors against pod labels, URLs against Services, NetworkPolicies against the topology
of SPEC §2, and the chart's command lines and environment against the binary itself: the
roles start with them, and the faults the hook Job writes (to a private redis-server in
place of session-data) reach running roles without a restart.

Run by scripts/test-chart.sh, which builds the binary the way the Dockerfile does and passes
it in ECOMMERCE_BIN.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import http.server
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

import helm_python as helm
import pytest
import yaml
from kubernetes_validate import utils as kube_validate

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "ecommerce"
SCRIPT = ROOT / "scripts" / "k6" / "journey.js"
DOCKERFILE = ROOT / "Dockerfile"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
CI_IDS = [p.name.removesuffix("-values.yaml") for p in CI_VALUES]

RELEASE = "shop"
NAMESPACE = "shop"
ROLES = ["web-gateway", "api-gateway", "cart", "checkout", "content", "payment", "product"]
UPSTREAMS = ["cart", "checkout", "content", "payment", "product"]
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest the
# validator knows.
KUBE_VERSIONS = ["1.27.0", kube_validate.latest_version()]
# The user each image runs as: the chart pins it, the image defines it.
IMAGE_USERS = {
    "ecommerce": 65532,
    "redis": 999,
    "postgres": 70,
    "grafana/k6": 12345,
    "otel/opentelemetry-collector-contrib": 10001,
    "jaegertracing/jaeger": 10001,
    "prom/prometheus": 65534,
    "grafana/grafana": 472,
    "grafana/loki": 10001,
}
# What a ReplicaSet appends to a Deployment's name to name a pod.
POD_SUFFIX = "-5f7d9c8b6-x2k4q"
# The roles' ports: the shop's (behind each Service) and, by default, the admin one
# (/metrics, /readyz, /faults, /healthz: the kubelet's and Prometheus').
SHOP_PORT = 8080
DEFAULT_ADMIN_PORT = 9090
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
# Where the shop's live fault state lives: session-data's primary, database 1.
FAULT_STATE = f"redis://{RELEASE}-session-data:6379/1"
# The Secrets and ConfigMaps of the user's own that ci/*-values.yaml name (existingSecret,
# external stores): what the cluster would hold, so that the tests can resolve them.
CLUSTER_SECRETS = {
    "shop-credentials": {
        "session-secret": "a-session-key-from-the-users-own-secret",
        "postgres-password": "pg-password-from-the-users-own-secret",
        "admin-token": "admin-token-from-the-users-own-secret",
    },
    "shop-otel": {"headers": "x-api-key=from-the-users-own-secret", "api-key": "vendor-key"},
    "shop-grafana": {"password": "grafana-password-from-the-users-own-secret"},
    "shop-cart-data-credentials": {"password": "cart-data-password"},
    "shop-product-data-credentials": {"password": "product-data-password"},
    "shop-session-data-urls": {
        "url": "rediss://:session-data-password@sessions.redis.example.com:6380/0",
        "replica-url": "rediss://:session-data-password@sessions-ro.redis.example.com:6380/0",
        "fault-state-url": "rediss://:session-data-password@sessions.redis.example.com:6380/1",
    },
    "team-otlp": {"token": "team-token"},
    "vendor-otlp": {"api-key": "vendor-key"},
}
CLUSTER_CONFIGMAPS = {"shop-store-ca": {"ca.crt": "-----BEGIN CERTIFICATE-----\n(the user's)\n"}}
# The stores by their values key, and the environment variables that carry their URLs.
STORES = {"cart-data": "cartData", "session-data": "sessionData", "product-data": "productData"}
STORE_OF_VARIABLE = {
    "ECOMMERCE_CART_DATA": "cart-data",
    "ECOMMERCE_CART_DATA_REPLICA": "cart-data",
    "ECOMMERCE_SESSION_DATA": "session-data",
    "ECOMMERCE_SESSION_DATA_REPLICA": "session-data",
    "ECOMMERCE_FAULT_STATE": "session-data",
    "ECOMMERCE_PRODUCT_DATA": "product-data",
}


# ---- rendering ------------------------------------------------------------------------


def load_values(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def merged(base: dict, more: dict) -> dict:
    """Helm's merge of values: maps merge key by key, anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@functools.cache
def _render(values_json: str, name: str, chart_path: str = str(CHART)) -> tuple[dict, ...]:
    with helm.Chart.load(Path(chart_path)) as chart:
        manifests = chart.render(json.loads(values_json), name=name, namespace=NAMESPACE)
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("metadata", {})["_template"] = path
                objects.append(doc)
    return tuple(objects)


class Rendered:
    """The objects one install would create, with lookups by kind and name."""

    def __init__(self, values: dict | None = None, name: str = RELEASE, chart: Path = CHART):
        self.values = values or {}
        self.objects = [copy.deepcopy(o) for o in _render(json.dumps(self.values), name, str(chart))]
        for o in self.objects:
            o["metadata"].pop("_template", None)

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def names(self, kind: str) -> set[str]:
        return {o["metadata"]["name"] for o in self.of_kind(kind)}

    def workloads(self) -> list[dict]:
        """Every object that runs pods: Deployments, StatefulSets and the hook Job."""
        return [o for o in self.objects if o["kind"] in ("Deployment", "StatefulSet", "Job")]

    def workload_of(self, component: str) -> dict:
        found = [w for w in self.workloads() if pod_labels(w).get(COMPONENT) == component]
        assert len(found) == 1, f"expected one workload of {component}, found {len(found)}"
        return found[0]

    def secret_value(self, name: str, key: str) -> str:
        """A Secret's value: the chart's own, else one of the user's (CLUSTER_SECRETS)."""
        if name not in self.names("Secret"):
            assert name in CLUSTER_SECRETS and key in CLUSTER_SECRETS[name], f"no Secret {name} with {key}"
            return CLUSTER_SECRETS[name][key]
        secret = self.get("Secret", name)
        return base64.b64decode(secret["data"][key]).decode()

    def external(self, store: str) -> bool:
        """Whether the values put `store` outside the chart."""
        return bool(self.values.get(STORES[store], {}).get("external", {}).get("enabled"))

    def fault_state(self) -> str:
        """The live fault state's URL every role and the faults Job are given."""
        return self.role_env("cart")["ECOMMERCE_FAULT_STATE"]

    def env(self, container: dict, pod: str = f"{RELEASE}-pod{POD_SUFFIX}") -> dict[str, str]:
        """A container's environment as the process sees it in a pod called `pod`: Secret
        references and the downward API resolved, $(VAR) references expanded."""
        out = {}
        for var in container.get("env", []):
            if "value" in var:
                out[var["name"]] = expand(var["value"], out)
            elif "fieldRef" in var["valueFrom"]:
                field = var["valueFrom"]["fieldRef"]["fieldPath"]
                out[var["name"]] = {"metadata.name": pod, "metadata.namespace": NAMESPACE}[field]
            else:
                ref = var["valueFrom"]["secretKeyRef"]
                out[var["name"]] = self.secret_value(ref["name"], ref["key"])
        return out

    def role_container(self, role: str) -> dict:
        return containers(self.workload_of(role))[0]

    def role_env(self, role: str) -> dict[str, str]:
        return self.env(self.role_container(role), pod=f"{RELEASE}-{role}{POD_SUFFIX}")


# What Kubernetes reads in an EnvVar value: an escaped $, or a $(NAME) reference.
ENV_REFERENCE = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def expand(value: str, defined: dict[str, str]) -> str:
    """Kubernetes' expansion of an EnvVar value: $(NAME) of a variable declared earlier in
    the list becomes its value, $$ a literal $, anything else stays as written."""
    return ENV_REFERENCE.sub(lambda m: "$" if m[0] == "$$" else defined.get(m[1], m[0]), value)


def references(value: str) -> list[str]:
    """The variables an EnvVar value refers to as $(NAME)."""
    return [m[1] for m in ENV_REFERENCE.finditer(value) if m[1]]


@functools.cache
def rendered_ci(ci_id: str) -> Rendered:
    return Rendered(load_values(CHART / "ci" / f"{ci_id}-values.yaml"))


def render_fails(values: dict) -> str:
    """The error Helm gives for `values`, failing the test if it renders."""
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmError) as caught:
            chart.render(values, name=RELEASE, namespace=NAMESPACE)
    return str(caught.value)


def render_text(values: dict) -> str:
    """Everything one install writes (every manifest and the NOTES), as text."""
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    return "\n".join(manifests[path] for path in sorted(manifests))


COMPONENT = "app.kubernetes.io/component"


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: dict) -> dict:
    return workload["spec"]["template"]["metadata"]["labels"]


def containers(workload: dict, init: bool = False) -> list[dict]:
    spec = pod_spec(workload)
    return (spec.get("initContainers", []) if init else []) + spec["containers"]


def matches(selector: dict, labels: dict) -> bool:
    """Whether a label selector (matchLabels/matchExpressions, or a plain map) selects."""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def service_ports(service: dict) -> set[int]:
    return {p["port"] for p in service["spec"]["ports"]}


def admin_port(rendered: "Rendered") -> int:
    """The roles' admin port the values ask for."""
    return rendered.values.get("admin", {}).get("port", DEFAULT_ADMIN_PORT)


def pod_annotations(workload: dict) -> dict:
    return workload["spec"]["template"]["metadata"].get("annotations") or {}


def container_ports(container: dict) -> dict[str, int]:
    """A container's ports by name."""
    return {p["name"]: p["containerPort"] for p in container.get("ports", [])}


ci = pytest.mark.parametrize("ci_id", CI_IDS)


# ---- the chart as Helm sees it ------------------------------------------------------------


def test_ci_values_files_are_the_eight_expected():
    assert set(CI_IDS) == {
        "default", "full", "minimal", "observability-off", "operator",
        "openshift", "external-stores", "existing-secrets",
    }


def test_app_version_is_the_crates_version():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    assert chart["apiVersion"] == "v2"
    assert str(chart["appVersion"]) == cargo["package"]["version"]


@ci
def test_lint_passes(ci_id):
    report = helm.lint(
        CHART,
        load_values(CHART / "ci" / f"{ci_id}-values.yaml"),
        strict=True,
        namespace=NAMESPACE,
        kube_version="v" + KUBE_VERSIONS[-1],
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], report


@ci
def test_every_object_validates_strictly(ci_id):
    rendered = rendered_ci(ci_id)
    assert rendered.objects
    failures = []
    for obj in rendered.objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            # The Prometheus Operator's kinds: test_observability validates them against
            # the Operator's own schemas.
            continue
        for version in KUBE_VERSIONS:
            try:
                kube_validate.validate(obj, version, strict=True)
            except kube_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                failures.append(f"{obj['kind']}/{obj['metadata']['name']} @ {version}: {path}: {e.message}")
            except kube_validate.SchemaNotFoundError as e:
                failures.append(e.message)
    assert not failures, "\n".join(failures)


def test_the_validator_rejects_an_unknown_field():
    # The control for the test above: strict mode really fails a misspelt field.
    deployment = copy.deepcopy(rendered_ci("default").get("Deployment", f"{RELEASE}-cart"))
    pod_spec(deployment)["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kube_validate.ValidationError):
        kube_validate.validate(deployment, KUBE_VERSIONS[-1], strict=True)


def test_object_names_fit_kubernetes_limits_with_a_long_release_name():
    long_name = "a-release-name-that-is-as-long-as-helm-allows-it-x"
    rendered = Rendered({}, name=long_name)
    dns_label = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
    for obj in rendered.objects:
        name = obj["metadata"]["name"]
        assert dns_label.match(name), f"{obj['kind']} {name!r} is not a DNS label"
    for sts in rendered.of_kind("StatefulSet"):
        # The controller-revision-hash label is <name>-<10 characters>.
        assert len(sts["metadata"]["name"]) <= 52
    urls = [v for r in ROLES for v in rendered.role_env(r).values() if "://" in v]
    assert urls and all(urlsplit(u).hostname in rendered.names("Service") for u in urls)


# ---- the shop's services --------------------------------------------------------------


@ci
def test_one_deployment_and_service_per_role(ci_id):
    rendered = rendered_ci(ci_id)
    for role in ROLES:
        name = f"{RELEASE}-{role}"
        deployment = rendered.get("Deployment", name)
        container = containers(deployment)[0]
        extra = rendered.values.get("roles", {}).get(role, {}).get("extraArgs", [])
        start = ["--fault", "bind-localhost"] if role == "api-gateway" and binds_localhost(rendered.values) else []
        assert container["args"] == ["serve", "--role", role, "--listen", "0.0.0.0:8080", *start, *extra]
        assert "command" not in container, "the image's ENTRYPOINT runs the binary"
        assert container["image"].split(":")[0].endswith("ecommerce")
        assert container["ports"] == [
            {"name": "http", "containerPort": SHOP_PORT, "protocol": "TCP"},
            {"name": "admin", "containerPort": admin_port(rendered), "protocol": "TCP"},
        ]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
        resources = container["resources"]
        assert resources["requests"] and resources["limits"]
        service = rendered.get("Service", name)
        assert service["spec"]["ports"] == [
            {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
        ]
    role_deployments = [
        d for d in rendered.of_kind("Deployment") if pod_labels(d)[COMPONENT] in ROLES
    ]
    assert len(role_deployments) == len(ROLES)


def binds_localhost(values: dict) -> bool:
    """Whether the values switch bind-localhost on: faults.bindLocalhost, or a role's list."""
    roles = values.get("roles", {})
    return bool(values.get("faults", {}).get("bindLocalhost")) or any(
        "bind-localhost" in (spec or {}).get("faults", []) for spec in roles.values()
    )


@ci
def test_selectors_match_the_pods_they_target(ci_id):
    rendered = rendered_ci(ci_id)
    workloads = rendered.workloads()
    for w in workloads:
        if w["kind"] == "Job":
            # Kubernetes makes a Job's selector; no Service or budget may pick its pods.
            assert "selector" not in w["spec"], w["metadata"]["name"]
            continue
        assert matches(w["spec"]["selector"], pod_labels(w)), w["metadata"]["name"]
        # No two workloads' selectors overlap.
        others = [o for o in workloads if o is not w and matches(w["spec"]["selector"], pod_labels(o))]
        assert not others, w["metadata"]["name"]
    for service in rendered.of_kind("Service"):
        selected = [w for w in workloads if matches(service["spec"]["selector"], pod_labels(w))]
        assert len(selected) == 1, service["metadata"]["name"]
        (target,) = selected
        # A Service is named after what it serves (the governing one with a suffix).
        assert service["metadata"]["name"].removesuffix("-headless") == target["metadata"]["name"]
        named_ports = {p["name"]: p["containerPort"] for c in containers(target) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in named_ports, (service["metadata"]["name"], port)
    for pdb in rendered.of_kind("PodDisruptionBudget"):
        selected = [w for w in workloads if matches(pdb["spec"]["selector"], pod_labels(w))]
        assert len(selected) == 1 and selected[0]["metadata"]["name"] == pdb["metadata"]["name"]
    for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment" and ref["name"] in rendered.names("Deployment")
    for policy in rendered.of_kind("NetworkPolicy"):
        assert any(matches(policy["spec"]["podSelector"], pod_labels(w)) for w in workloads)
        for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", []):
            for peer in rule.get("from", []) + rule.get("to", []):
                if set(peer) == {"podSelector"}:
                    assert any(matches(peer["podSelector"], pod_labels(w)) for w in workloads), peer
    for sts in rendered.of_kind("StatefulSet"):
        governing = rendered.get("Service", sts["spec"]["serviceName"])
        assert governing["spec"]["clusterIP"] == "None"
    for ingress in rendered.of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = rendered.get("Service", backend["name"])
                assert backend["port"]["number"] in service_ports(service)


@ci
def test_every_reference_names_an_object_the_chart_creates(ci_id):
    # Or one of the user's that the values name (CLUSTER_SECRETS, CLUSTER_CONFIGMAPS).
    rendered = rendered_ci(ci_id)
    for w in rendered.workloads():
        for c in containers(w, init=True):
            for var in c.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert rendered.secret_value(ref["name"], ref["key"]), (w["metadata"]["name"], var["name"])
            claims = {v["metadata"]["name"] for v in w["spec"].get("volumeClaimTemplates", [])}
            for mount in c.get("volumeMounts", []):
                assert mount["name"] in {v["name"] for v in pod_spec(w).get("volumes", [])} | claims, mount
        for volume in pod_spec(w).get("volumes", []):
            if "configMap" in volume:
                name = volume["configMap"]["name"]
                if name in rendered.names("ConfigMap"):
                    data = rendered.get("ConfigMap", name)["data"]
                else:
                    data = CLUSTER_CONFIGMAPS[name]
                assert all(item["key"] in data for item in volume["configMap"].get("items", [])), volume
            if "secret" in volume:
                for item in volume["secret"].get("items", []):
                    assert rendered.secret_value(volume["secret"]["secretName"], item["key"])
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in rendered.names("PersistentVolumeClaim")
    assert rendered.names("Secret") <= {o["metadata"]["name"] for o in rendered.objects}


@ci
def test_every_url_a_role_is_given_names_a_service_of_the_chart_on_a_port_it_exposes(ci_id):
    rendered = rendered_ci(ci_id)
    services = {s["metadata"]["name"]: s for s in rendered.of_kind("Service")}
    checked = 0
    for w in rendered.workloads():
        for c in containers(w, init=True):
            for name, value in rendered.env(c).items():
                # Addresses outside the cluster that the user chose: the collector, the
                # bucket, external stores.
                if "://" not in value or name.startswith("OTEL_") or name == "ECOMMERCE_CONTENT_SOURCE":
                    continue
                if name in STORE_OF_VARIABLE and rendered.external(STORE_OF_VARIABLE[name]):
                    continue
                url = urlsplit(value)
                assert url.hostname in services, f"{w['metadata']['name']} {name}={value}"
                assert url.port in service_ports(services[url.hostname]), f"{name}={value}"
                checked += 1
    # The api-gateway's URL (web-gateway, checkout) and its five upstreams at least.
    assert checked >= 7


@ci
def test_roles_are_wired_to_each_other_and_to_their_stores(ci_id):
    rendered = rendered_ci(ci_id)
    values = rendered.values
    api = f"http://{RELEASE}-api-gateway:80"
    assert rendered.role_env("web-gateway")["ECOMMERCE_API_GATEWAY_URL"] == api
    assert rendered.role_env("checkout")["ECOMMERCE_API_GATEWAY_URL"] == api
    gateway = rendered.role_env("api-gateway")
    for upstream in UPSTREAMS:
        assert gateway[f"ECOMMERCE_UPSTREAM_{upstream.upper()}"] == f"http://{RELEASE}-{upstream}:80"
    for role, store, key, option in [
        ("cart", "cart-data", "cartData", "CART_DATA"),
        ("web-gateway", "session-data", "sessionData", "SESSION_DATA"),
    ]:
        env = rendered.role_env(role)
        if rendered.external(store):
            # test_external_stores_are_wired_as_the_values_say
            assert env[f"ECOMMERCE_{option}"].startswith(("redis://", "rediss://"))
            continue
        assert env[f"ECOMMERCE_{option}"] == f"redis://{RELEASE}-{store}:6379"
        replica = values.get(key, {}).get("replica", {}).get("enabled", True)
        if replica:
            assert env[f"ECOMMERCE_{option}_REPLICA"] == f"redis://{RELEASE}-{store}-replica:6379"
        else:
            assert f"ECOMMERCE_{option}_REPLICA" not in env
    product_data = urlsplit(rendered.role_env("product")["ECOMMERCE_PRODUCT_DATA"])
    assert product_data.scheme in ("postgres", "postgresql") and product_data.path == "/products"
    if not rendered.external("product-data"):
        (ref,) = [v["valueFrom"]["secretKeyRef"] for v in rendered.role_container("product")["env"]
                  if v["name"] == "PRODUCT_DATA_PASSWORD"]
        assert product_data.password == rendered.secret_value(ref["name"], ref["key"])
    # Every role follows the live fault state, in session-data's primary, database 1.
    for role in ROLES:
        if rendered.external("session-data"):
            assert urlsplit(rendered.role_env(role)["ECOMMERCE_FAULT_STATE"]).path == "/1", role
        else:
            assert rendered.role_env(role)["ECOMMERCE_FAULT_STATE"] == FAULT_STATE, role
    # Every role but product serves without a database; no role gets a store it does not use.
    for role in ROLES:
        env = rendered.role_env(role)
        assert ("ECOMMERCE_PRODUCT_DATA" in env) == (role == "product")
        assert ("ECOMMERCE_CART_DATA" in env) == (role == "cart")
        assert ("ECOMMERCE_SESSION_DATA" in env) == (role == "web-gateway")


@ci
def test_redis_replicas_follow_their_primaries(ci_id):
    rendered = rendered_ci(ci_id)
    for store, key in [("cart-data", "cartData"), ("session-data", "sessionData")]:
        if rendered.external(store):
            continue
        primary = rendered.workload_of(store)
        assert "--replicaof" not in containers(primary)[0]["args"]
        replica_on = rendered.values.get(key, {}).get("replica", {}).get("enabled", True)
        if not replica_on:
            assert f"{RELEASE}-{store}-replica" not in rendered.names("Deployment")
            continue
        args = containers(rendered.workload_of(f"{store}-replica"))[0]["args"]
        i = args.index("--replicaof")
        host, port = args[i + 1], int(args[i + 2])
        service = rendered.get("Service", host)
        assert port in service_ports(service)
        assert matches(service["spec"]["selector"], pod_labels(primary))
        for w in (primary, rendered.workload_of(f"{store}-replica")):
            assert containers(w)[0]["image"].startswith("redis:7")


@ci
def test_product_data_is_postgres_and_the_migrate_job_loads_the_catalog(ci_id):
    rendered = rendered_ci(ci_id)
    product = rendered.get("Deployment", f"{RELEASE}-product")
    # No init container: the catalog is the hook Job's (test_migrate_runs_once_per_install_and_upgrade).
    assert "initContainers" not in pod_spec(product)
    (migrate,) = containers(migrate_job(rendered))
    assert migrate["args"] == ["migrate"]
    assert migrate["image"] == containers(product)[0]["image"]
    assert rendered.env(migrate)["ECOMMERCE_PRODUCT_DATA"] == rendered.role_env("product")["ECOMMERCE_PRODUCT_DATA"]
    if rendered.external("product-data"):
        assert f"{RELEASE}-product-data" not in rendered.names("StatefulSet")
        return
    sts = rendered.get("StatefulSet", f"{RELEASE}-product-data")
    postgres = containers(sts)[0]
    assert postgres["image"].startswith("postgres:16")
    env = rendered.env(postgres)
    assert env["POSTGRES_DB"] == "products"
    url = urlsplit(rendered.role_env("product")["ECOMMERCE_PRODUCT_DATA"])
    assert (url.username, url.password) == (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"])
    assert [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["data"]
    mounts = {m["mountPath"] for m in postgres["volumeMounts"]}
    assert {"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"} <= mounts


def test_store_persistence_is_an_empty_dir_unless_enabled():
    default, full = rendered_ci("default"), rendered_ci("full")
    for component in ("cart-data", "cart-data-replica", "session-data", "session-data-replica"):
        (volume,) = pod_spec(default.workload_of(component))["volumes"]
        assert volume == {"name": "data", "emptyDir": {}}
        (volume,) = pod_spec(full.workload_of(component))["volumes"]
        assert volume["persistentVolumeClaim"]["claimName"] == f"{RELEASE}-{component}"
    assert not default.of_kind("PersistentVolumeClaim")
    pvc = full.get("PersistentVolumeClaim", f"{RELEASE}-cart-data")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert pvc["spec"]["storageClassName"] == "standard"


# ---- the admin port -------------------------------------------------------------------


@ci
def test_every_role_serves_its_operational_endpoints_on_the_admin_port(ci_id):
    rendered = rendered_ci(ci_id)
    port = admin_port(rendered)
    assert port != SHOP_PORT
    for role in ROLES:
        container = rendered.role_container(role)
        assert container_ports(container) == {"http": SHOP_PORT, "admin": port}, role
        assert rendered.role_env(role)["ECOMMERCE_ADMIN_LISTEN"] == f"0.0.0.0:{port}", role
        # Every probe the kubelet runs, whichever there are, asks the admin port.
        probes = [container[p] for p in PROBES if p in container]
        assert len(probes) >= 2, role
        assert all(p["httpGet"]["port"] == "admin" for p in probes), role
        annotations = pod_annotations(rendered.workload_of(role))
        assert annotations["prometheus.io/scrape"] == "true", role
        assert annotations["prometheus.io/port"] == str(port), role
        assert annotations["prometheus.io/path"] == "/metrics", role
    # Nothing else is told to open it or to be scraped there: not the stores, the
    # synthetics or product's migrate.
    for w in rendered.workloads():
        role_pod = pod_labels(w)[COMPONENT] in ROLES
        for c in containers(w, init=True):
            if role_pod and c is containers(w)[0]:
                continue
            assert "ECOMMERCE_ADMIN_LISTEN" not in rendered.env(c), c["name"]
            assert "admin" not in container_ports(c), c["name"]
        if not role_pod:
            assert "prometheus.io/port" not in pod_annotations(w), w["metadata"]["name"]


def test_the_admin_port_is_the_one_the_values_name():
    rendered = Rendered({"admin": {"port": 9300}})
    for role in ROLES:
        assert container_ports(rendered.role_container(role))["admin"] == 9300
        assert rendered.role_env(role)["ECOMMERCE_ADMIN_LISTEN"] == "0.0.0.0:9300"
        assert pod_annotations(rendered.workload_of(role))["prometheus.io/port"] == "9300"


def test_pod_annotations_may_override_the_scrape_annotations():
    values = {"podAnnotations": {"prometheus.io/scrape": "false", "team": "shop"}}
    rendered = Rendered(values)
    for w in rendered.workloads():
        annotations = pod_annotations(w)
        assert annotations["team"] == "shop", w["metadata"]["name"]
        assert annotations["prometheus.io/scrape"] == "false", w["metadata"]["name"]
    for role in ROLES:
        assert pod_annotations(rendered.workload_of(role))["prometheus.io/port"] == str(DEFAULT_ADMIN_PORT)
    # Merged, not written twice: a YAML parser would keep either copy of a repeated key.
    assert render_text(values).count("prometheus.io/scrape:") == len(rendered.workloads())


@ci
def test_no_service_exposes_the_admin_port(ci_id):
    rendered = rendered_ci(ci_id)
    port = admin_port(rendered)
    role_pods = [pod_labels(rendered.workload_of(role)) for role in ROLES]
    for service in rendered.of_kind("Service"):
        # Those of role pods (Prometheus' own Service may well listen on 9090 too).
        if not any(matches(service["spec"]["selector"], labels) for labels in role_pods):
            continue
        for p in service["spec"]["ports"]:
            assert p["targetPort"] != "admin" and port not in (p["port"], p["targetPort"]), service["metadata"]["name"]
    # The shop's front door opens on its port 80, the role's shop port, and nothing else.
    web = rendered.get("Service", f"{RELEASE}-web-gateway")
    assert web["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert container_ports(rendered.role_container("web-gateway"))["http"] == SHOP_PORT
    for ingress in rendered.of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["port"] == {"number": 80}


# ---- synthetics -----------------------------------------------------------------------


def test_the_charts_k6_script_is_a_link_to_the_repositorys():
    link = CHART / "files" / "journey.js"
    assert link.is_symlink()
    assert os.readlink(link) == "../../../../scripts/k6/journey.js"
    assert link.resolve() == SCRIPT.resolve()


def test_a_packaged_chart_carries_the_script_itself(tmp_path):
    archive = helm.package(CHART, destination=tmp_path)
    with helm.Chart.load(archive) as chart:
        manifests = chart.render({}, name=RELEASE, namespace=NAMESPACE)
    configmap = next(
        doc for doc in yaml.safe_load_all(manifests["ecommerce/templates/synthetics.yaml"])
        if doc and doc["kind"] == "ConfigMap"
    )
    assert configmap["data"]["journey.js"].encode() == SCRIPT.read_bytes()


@ci
def test_synthetics_run_the_repositorys_k6_script_against_the_web_gateway(ci_id):
    rendered = rendered_ci(ci_id)
    synthetics = rendered.values.get("synthetics", {})
    if not synthetics.get("enabled", True):
        assert f"{RELEASE}-synthetics" not in rendered.names("Deployment")
        assert f"{RELEASE}-synthetics" not in rendered.names("ConfigMap")
        return
    configmap = rendered.get("ConfigMap", f"{RELEASE}-synthetics")
    assert configmap["data"]["journey.js"].encode() == SCRIPT.read_bytes()
    deployment = rendered.get("Deployment", f"{RELEASE}-synthetics")
    assert deployment["spec"]["replicas"] == synthetics.get("replicas", 3)
    k6 = containers(deployment)[0]
    assert k6["image"].startswith("grafana/k6:")
    # With the chart's Prometheus, k6 also writes its metrics there (test_observability).
    assert [a for a in k6["args"] if a not in ("--out", "experimental-prometheus-rw")] == [
        "run", "--no-summary", "/scripts/journey.js"
    ]
    env = rendered.env(k6)
    assert env["BASE_URL"] == f"http://{RELEASE}-web-gateway:80"
    # The users at traffic level 1, and the highest level they follow (the script runs the
    # product of the two, and asks the shop for the level).
    assert env["VUS"] == str(synthetics.get("vus", 2))
    assert env["MAX_TRAFFIC_LEVEL"] == str(synthetics.get("maxTrafficLevel", 10))
    mount = next(m for m in k6["volumeMounts"] if m["mountPath"] == "/scripts")
    volume = next(v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]


def test_synthetics_default_to_the_originals_three_pods_of_two_users():
    deployment = rendered_ci("default").get("Deployment", f"{RELEASE}-synthetics")
    assert deployment["spec"]["replicas"] == 3
    env = rendered_ci("default").env(containers(deployment)[0])
    assert (env["VUS"], env["MAX_TRAFFIC_LEVEL"]) == ("2", "10")


def test_the_journey_follows_the_level_only_when_asked_to():
    # The chart's synthetics set MAX_TRAFFIC_LEVEL; load tests (the benchmark, the
    # topology test) leave it unset and get VUS users that always play.
    script = SCRIPT.read_text()
    assert "__ENV.MAX_TRAFFIC_LEVEL" in script and "/api/v1/traffic" in script
    assert "vus: USERS" in script and "const USERS = FOLLOWING ? VUS * MAX_TRAFFIC_LEVEL : VUS;" in script


# ---- faults ---------------------------------------------------------------------------
#
# The faults: values are the shop's live fault state, which a post-install/post-upgrade
# hook Job writes (`ecommerce faults set`) and every role follows without a restart: they
# are in no pod of the shop, but for bind-localhost, which decides the api-gateway's bind.

FAULT_CASES = [
    ({"basicBug": True}, ["basic-bug"]),
    ({"bindLocalhost": True}, []),
    ({"paymentFailure": 0.3}, ["payment-failure=0.3"]),
    ({"paymentFailure": 1}, ["payment-failure=1"]),
    ({"paymentLatency": 2500}, ["payment-latency=2500"]),
    ({"paymentFailure": 0.5, "paymentLatency": 100}, ["payment-failure=0.5", "payment-latency=100"]),
    ({"cartDataOutage": True}, ["cart-data-outage"]),
    ({"memoryLeak": "checkout"}, ["memory-leak=checkout"]),
    ({"memoryLeak": "web-gateway"}, ["memory-leak=web-gateway"]),
    ({"trafficSpike": True}, []),
    ({}, []),
]


def migrate_job(rendered: Rendered) -> dict:
    return rendered.get("Job", f"{RELEASE}-migrate")


def faults_job(rendered: Rendered) -> dict:
    return rendered.get("Job", f"{RELEASE}-faults")


def faults_set(rendered: Rendered) -> tuple[list[str], str]:
    """The faults the hook Job sets (positional arguments) and its --traffic-level."""
    args = containers(faults_job(rendered))[0]["args"]
    assert args[:2] == ["faults", "set"], args
    rest, faults, level = args[2:], [], None
    while rest:
        arg = rest.pop(0)
        if arg == "--traffic-level":
            level = rest.pop(0)
        elif arg == "--wait":
            rest.pop(0)
        else:
            assert not arg.startswith("-"), f"an option the test does not know: {arg}"
            faults.append(arg)
    return faults, level


@pytest.mark.parametrize("faults,expected", FAULT_CASES, ids=[json.dumps(c[0]) for c in FAULT_CASES])
def test_the_hook_job_sets_the_faults_the_values_select(faults, expected):
    rendered = Rendered({"faults": faults})
    assert faults_set(rendered) == (expected, "10" if faults.get("trafficSpike") else "1")
    for role in ROLES:
        assert "ECOMMERCE_FAULTS" not in rendered.role_env(role), role
        args = rendered.role_container(role)["args"]
        bound = role == "api-gateway" and faults.get("bindLocalhost", False)
        assert ("--fault" in args) == bound, role
        if bound:
            assert args[args.index("--fault") + 1] == "bind-localhost"


@ci
def test_the_hook_job_writes_the_live_state_after_every_install_and_upgrade(ci_id):
    rendered = rendered_ci(ci_id)
    job = faults_job(rendered)
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "post-install,post-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert job["spec"]["backoffLimit"] <= 3
    assert 0 < job["spec"]["ttlSecondsAfterFinished"] <= 86400
    # Within Helm's default --timeout, which waits for the hook.
    assert 0 < job["spec"]["activeDeadlineSeconds"] <= 300
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    (container,) = containers(job, init=True)
    # The shop's own image and binary; it writes where every role reads.
    assert container["image"] == rendered.role_container("cart")["image"]
    assert "command" not in container, "the image's ENTRYPOINT runs the binary"
    env = rendered.env(container)
    assert env["ECOMMERCE_FAULT_STATE"] == rendered.fault_state()
    # And what an external session-data needs: its password, its CA.
    assert set(env) <= {"ECOMMERCE_FAULT_STATE", "SESSION_DATA_PASSWORD", "ECOMMERCE_CA_FILE"}
    args = container["args"]
    wait = int(args[args.index("--wait") + 1])
    assert 0 < wait < job["spec"]["activeDeadlineSeconds"], "it waits for session-data, but not forever"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    # Restricted, as every pod: test_every_pod_and_container_runs_locked_down covers the Job.
    assert job in rendered.workloads()


def test_the_faults_of_every_role_are_folded_into_the_live_list():
    rendered = Rendered({
        "faults": {"cartDataOutage": True},
        "roles": {"cart": {"faults": ["memory-leak=cart"]}, "payment": {"faults": ["payment-latency=300"]}},
    })
    assert faults_set(rendered) == (["cart-data-outage", "memory-leak=cart", "payment-latency=300"], "1")
    # The same fault twice, with one value, is one fault.
    again = Rendered({"faults": {"cartDataOutage": True}, "roles": {"cart": {"faults": ["cart-data-outage"]}}})
    assert faults_set(again)[0] == ["cart-data-outage"]
    # bind-localhost in a role's list is the api-gateway's start-time fault, wherever it is.
    bound = Rendered({"roles": {"cart": {"faults": ["bind-localhost"]}}})
    assert faults_set(bound)[0] == []
    assert rendered_args_fault(bound, "api-gateway") == "bind-localhost"
    assert rendered_args_fault(bound, "cart") is None


def rendered_args_fault(rendered: Rendered, role: str) -> str | None:
    args = rendered.role_container(role)["args"]
    return args[args.index("--fault") + 1] if "--fault" in args else None


@pytest.mark.parametrize(
    "values",
    [
        {"faults": {"memoryLeak": "cart"}, "roles": {"content": {"faults": ["memory-leak=content"]}}},
        {"faults": {"paymentFailure": 0.5}, "roles": {"payment": {"faults": ["payment-failure"]}}},
    ],
    ids=["memory-leak", "payment-failure"],
)
def test_one_fault_with_two_values_is_refused(values):
    message = render_fails(values)
    assert "holds one value per fault" in message, message


def test_traffic_spike_is_the_live_traffic_level_not_a_rollout():
    calm = Rendered({})
    spike = Rendered({"faults": {"trafficSpike": True}, "synthetics": {"trafficSpikeLevel": 4}})
    assert (faults_set(calm)[1], faults_set(spike)[1]) == ("1", "4")
    assert faults_set(Rendered({"faults": {"trafficSpike": True}, "synthetics": {"trafficSpikeLevel": 2.5}}))[1] == "2.5"
    synthetics = lambda r: r.get("Deployment", f"{RELEASE}-synthetics")  # noqa: E731
    assert synthetics(calm) == synthetics(spike)


PROBE_FAULTS = [
    {"basicBug": True},
    {"paymentFailure": 0.5, "paymentLatency": 3000},
    {"cartDataOutage": True, "memoryLeak": "cart", "trafficSpike": True},
]


@pytest.mark.parametrize("faults", PROBE_FAULTS, ids=[json.dumps(f) for f in PROBE_FAULTS])
def test_switching_a_live_fault_rolls_no_pod(faults):
    # Render twice, the faults the only difference: every pod template is the same (so a
    # `helm upgrade` restarts nothing); only the hook Job's arguments differ.
    before, after = Rendered({}), Rendered({"faults": faults})
    for w in before.workloads():
        if w["kind"] == "Job":
            continue
        twin = after.get(w["kind"], w["metadata"]["name"])
        assert w["spec"]["template"] == twin["spec"]["template"], w["metadata"]["name"]
    assert faults_set(before) != faults_set(after)


def test_bind_localhost_rolls_the_api_gateway_alone():
    before, after = Rendered({}), Rendered({"faults": {"bindLocalhost": True}})
    checksum = lambda r, role: pod_annotations(r.workload_of(role))["checksum/config"]  # noqa: E731
    for w in before.workloads():
        if w["kind"] == "Job":
            continue
        component = pod_labels(w)[COMPONENT]
        same = w["spec"]["template"] == after.get(w["kind"], w["metadata"]["name"])["spec"]["template"]
        assert same == (component != "api-gateway"), component
    assert checksum(before, "api-gateway") != checksum(after, "api-gateway")
    assert checksum(before, "cart") == checksum(after, "cart")
    # Not a live fault: the Job never sets it (the binary refuses it there).
    assert "bind-localhost" not in faults_set(after)[0]


# ---- values schema ---------------------------------------------------------------------

BAD_VALUES = [
    {"rolez": {}},
    {"roles": {"cart": {"replicaz": 2}}},
    {"roles": {"basket": {"replicas": 1}}},
    {"roles": {"cart": {"faults": ["meteor"]}}},
    {"roles": {"cart": {"faults": ["payment-failure=2"]}}},
    {"roles": {"content": None}},
    {"faults": {"meteor": True}},
    {"faults": {"paymentFailure": 2}},
    {"faults": {"paymentLatency": -1}},
    {"faults": {"memoryLeak": "basket"}},
    {"faults": {"basicBug": "yes"}},
    {"synthetics": {"vus": 0}},
    {"synthetics": {"maxTrafficLevel": 0}},
    {"synthetics": {"maxTrafficLevel": 11}},
    {"synthetics": {"maxTrafficLevel": 2.5}},
    {"synthetics": {"trafficSpikeLevel": 0}},
    {"synthetics": {"trafficSpikeLevel": 11}},
    {"synthetics": {"trafficSpikeVus": 20}},
    {"productData": {"password": "p@ss/word"}},
    {"content": {"source": "https://bucket.example.com/images"}},
    {"otel": {"endpoint": "https://otel-collector:4318"}},
    {"otel": {"endpoint": "otel-collector:4318"}},
    {"otel": {"serviceName": "shop"}},
    {"otel": {"environment": 3}},
    {"otel": {"sampler": {"name": "sometimes", "ratio": 1}}},
    {"otel": {"sampler": {"name": "traceidratio", "ratio": 1.5}}},
    {"otel": {"sampler": {"name": "traceidratio", "arg": 0.5}}},
    {"admin": {"tokn": "s3cret"}},
    {"admin": {"token": "two words"}},
    {"admin": {"existingSecret": "Not_A_Secret_Name"}},
    {"admin": {"existingSecret": {"name": "Not_A_Secret_Name", "key": "admin-token"}}},
    {"admin": {"existingSecret": {"name": "ops", "key": "a key"}}},
    {"admin": {"existingSecret": {"name": "ops", "key": "admin-token", "namespace": "ops"}}},
    {"admin": {"port": "9090"}},
    {"admin": {"port": 9090.5}},
    {"admin": {"port": SHOP_PORT}},
    {"admin": {"port": 80}},
    {"admin": {"port": 65536}},
    {"admin": {"port": None}},
    {"admin": {"prot": 9090}},
    {"networkPolicies": {"enabled": True, "extra": []}},
    {"image": {"pullPolicy": "Sometimes"}},
]


@pytest.mark.parametrize("values", BAD_VALUES, ids=[json.dumps(v) for v in BAD_VALUES])
def test_the_schema_rejects_a_bad_value(values):
    message = render_fails(values)
    assert "schema" in message, message
    report = helm.lint(CHART, values, strict=True)
    assert report["errors"], report


# ---- network policies -----------------------------------------------------------------


class Endpoint:
    """One end of a connection: a pod (labels, namespace) or an address outside the cluster."""

    def __init__(self, name, labels=None, namespace=NAMESPACE, ip="10.244.1.10"):
        self.name, self.labels, self.namespace, self.ip = name, labels, namespace, ip

    @property
    def is_pod(self):
        return self.labels is not None

    def namespace_labels(self):
        return {"kubernetes.io/metadata.name": self.namespace}

    def __repr__(self):
        return self.name


class NetworkPolicies:
    """What the rendered NetworkPolicies allow, by the rules of the Kubernetes API."""

    def __init__(self, policies: list[dict]):
        self.policies = policies

    def _peer_matches(self, peer: dict, other: Endpoint) -> bool:
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            ip = ipaddress.ip_address(other.ip)
            inside = lambda cidr: ip.version == ipaddress.ip_network(cidr).version and ip in ipaddress.ip_network(cidr)  # noqa: E731
            return inside(block["cidr"]) and not any(inside(c) for c in block.get("except", []))
        if not other.is_pod:
            return False
        if "namespaceSelector" in peer:
            if not matches(peer["namespaceSelector"], other.namespace_labels()):
                return False
        elif other.namespace != NAMESPACE:
            return False
        return matches(peer.get("podSelector", {}), other.labels)

    @staticmethod
    def _port_matches(ports, port: int, protocol: str) -> bool:
        if not ports:
            return True
        for p in ports:
            if p.get("protocol", "TCP") != protocol:
                continue
            if "port" not in p or p["port"] == port or (p["port"] <= port <= p.get("endPort", p["port"])):
                return True
        return False

    def _direction_allows(self, pod: Endpoint, other: Endpoint, port, protocol, direction) -> bool:
        selecting = [
            p for p in self.policies
            if direction in p["spec"]["policyTypes"] and matches(p["spec"]["podSelector"], pod.labels)
        ]
        if not selecting:
            return True
        key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in selecting:
            for rule in policy["spec"].get(key) or []:
                peers = rule.get(peers_key)
                if (not peers or any(self._peer_matches(peer, other) for peer in peers)) and self._port_matches(
                    rule.get("ports"), port, protocol
                ):
                    return True
        return False

    def allows(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        ours = lambda e: e.is_pod and e.namespace == NAMESPACE  # noqa: E731
        egress = not ours(src) or self._direction_allows(src, dst, port, protocol, "Egress")
        ingress = not ours(dst) or self._direction_allows(dst, src, port, protocol, "Ingress")
        return egress and ingress


# SPEC §2: who may open a connection to whom (the destination's pod port). And the shop's
# live fault state, in session-data: every role follows it, the hook Job ("faults") writes it;
# the hook Job "migrate" loads the catalog into product-data.
TOPOLOGY = {
    ("outside", "web-gateway"),
    ("synthetics", "web-gateway"),
    ("web-gateway", "api-gateway"),
    *{(r, "session-data") for r in ROLES},
    ("faults", "session-data"),
    ("web-gateway", "session-data-replica"),
    ("checkout", "api-gateway"),
    *{("api-gateway", r) for r in UPSTREAMS},
    ("cart", "cart-data"),
    ("cart", "cart-data-replica"),
    ("product", "product-data"),
    ("migrate", "product-data"),
    ("cart-data-replica", "cart-data"),
    ("session-data-replica", "session-data"),
}
# (synthetics, the hook Jobs and the outside listen nowhere: 8080 stands for any port.)
PORTS = {"cart-data": 6379, "cart-data-replica": 6379, "session-data": 6379, "session-data-replica": 6379,
         "product-data": 5432, "synthetics": 8080, "faults": 8080, "migrate": 8080, "outside": 8080,
         **{r: 8080 for r in ROLES}}


def endpoints_of(rendered: Rendered) -> dict[str, Endpoint]:
    """Every pod of the release by component, and "outside" (an address on the internet)."""
    points = {
        pod_labels(w)[COMPONENT]: Endpoint(pod_labels(w)[COMPONENT], pod_labels(w))
        for w in rendered.workloads()
    }
    points["outside"] = Endpoint("outside", ip="198.51.100.7")
    return points


def shop_endpoints_of(rendered: Rendered) -> dict[str, Endpoint]:
    """The shop's own pods (roles, stores, synthetics) and "outside": not the observability
    stack's, whose edges test_observability checks."""
    return {name: point for name, point in endpoints_of(rendered).items() if name in PORTS}


def test_network_policies_allow_exactly_the_topology():
    rendered = rendered_ci("full")
    policies = NetworkPolicies(rendered.of_kind("NetworkPolicy"))
    points = shop_endpoints_of(rendered)
    assert set(points) == {p for edge in TOPOLOGY for p in edge}
    wrong = []
    for src in points.values():
        for dst in points.values():
            if src is dst:
                continue
            expected = (src.name, dst.name) in TOPOLOGY
            if policies.allows(src, dst, PORTS[dst.name]) != expected:
                wrong.append(f"{src} -> {dst}:{PORTS[dst.name]} should be {'allowed' if expected else 'denied'}")
    assert not wrong, "\n".join(wrong)


def test_every_role_and_the_hook_job_reach_the_fault_state_and_no_other_store():
    rendered = rendered_ci("full")
    policies = NetworkPolicies(rendered.of_kind("NetworkPolicy"))
    p = shop_endpoints_of(rendered)
    state = urlsplit(FAULT_STATE)
    assert rendered.get("Service", state.hostname) and p["session-data"].labels == pod_labels(rendered.workload_of("session-data"))
    for name in [*ROLES, "faults"]:
        assert policies.allows(p[name], p["session-data"], state.port), name
        # The fault state is on the primary: the replica stays the web-gateway's alone.
        assert policies.allows(p[name], p["session-data-replica"], 6379) == (name == "web-gateway"), name
        assert policies.allows(p[name], p["cart-data"], 6379) == (name == "cart"), name
    # The Job connects, nothing connects to it.
    assert not any(policies.allows(p[name], p["faults"], port) for name in p for port in (6379, 8080, 9090))


def test_network_policies_deny_the_shortcuts_spec_forbids():
    rendered = rendered_ci("full")
    policies = NetworkPolicies(rendered.of_kind("NetworkPolicy"))
    p = shop_endpoints_of(rendered)
    assert not policies.allows(p["web-gateway"], p["cart-data"], 6379)
    assert not policies.allows(p["cart"], p["product-data"], 5432)
    assert not policies.allows(p["web-gateway"], p["cart"], 8080)
    assert not policies.allows(p["checkout"], p["payment"], 8080)
    assert not policies.allows(p["outside"], p["api-gateway"], 8080)
    assert not policies.allows(p["synthetics"], p["api-gateway"], 8080)
    assert not policies.allows(p["cart-data"], p["cart-data-replica"], 6379)
    # The right peer on the wrong port is denied too.
    assert not policies.allows(p["web-gateway"], p["api-gateway"], 6379)


def test_network_policies_let_every_pod_resolve_names_and_nothing_else_out():
    rendered = rendered_ci("full")
    policies = NetworkPolicies(rendered.of_kind("NetworkPolicy"))
    dns = Endpoint("kube-dns", {"k8s-app": "kube-dns"}, namespace="kube-system", ip="10.96.0.10")
    internet = Endpoint("internet", ip="203.0.113.20")
    private_host = Endpoint("private-host", ip="10.1.2.3")
    for point in shop_endpoints_of(rendered).values():
        if point.name == "outside":
            continue
        assert policies.allows(point, dns, 53, "UDP") and policies.allows(point, dns, 53, "TCP"), point
        # content alone reaches the image bucket: content.source names port 8000.
        assert policies.allows(point, internet, 8000) == (point.name == "content"), point
        assert not policies.allows(point, internet, 443), point
        assert not policies.allows(point, private_host, 8000), point


def test_network_policies_admit_the_extra_peers_of_the_values():
    rendered = rendered_ci("full")
    policies = NetworkPolicies(rendered.of_kind("NetworkPolicy"))
    points = shop_endpoints_of(rendered)
    prometheus = Endpoint("prometheus", {"app": "prometheus"}, namespace="monitoring")
    collector = Endpoint("collector", {"app": "otel-collector"}, namespace="observability")
    for name, point in points.items():
        if name in ROLES:
            assert policies.allows(prometheus, point, 8080), name
            assert policies.allows(point, collector, 4318), name
        elif name != "outside":
            assert not policies.allows(prometheus, point, PORTS[name]), name
            assert not policies.allows(point, collector, 4318), name


def test_network_policies_open_the_admin_port_to_the_scrape_source_alone():
    rendered = rendered_ci("full")
    port = admin_port(rendered)
    policies = NetworkPolicies(rendered.of_kind("NetworkPolicy"))
    points = shop_endpoints_of(rendered)
    # The peers of networkPolicies.extraIngressFrom: the monitoring namespace. (The chart's
    # own scrapers are test_observability's.)
    prometheus = Endpoint("prometheus", {"app": "prometheus"}, namespace="monitoring")
    same_app_elsewhere = Endpoint("prometheus-elsewhere", {"app": "prometheus"}, namespace="default")
    for role in ROLES:
        pod = points[role]
        assert policies.allows(prometheus, pod, port), role
        assert not policies.allows(prometheus, pod, port + 1), role
        # Not the shop's own pods (the caller of a role included), nor the outside (for
        # the web-gateway, whose shop port is open to all), nor anyone else.
        for other in [*points.values(), same_app_elsewhere]:
            assert not policies.allows(other, pod, port), f"{other} -> {role}:{port}"


def test_network_policies_without_extra_peers_open_the_admin_port_to_none():
    # Without the observability stack, whose Prometheus scrapes there.
    rendered = Rendered({"networkPolicies": {"enabled": True}, "observability": {"enabled": False}})
    policies = NetworkPolicies(rendered.of_kind("NetworkPolicy"))
    points = endpoints_of(rendered)
    prometheus = Endpoint("prometheus", {"app": "prometheus"}, namespace="monitoring")
    for role in ROLES:
        for other in [*points.values(), prometheus]:
            assert not policies.allows(other, points[role], DEFAULT_ADMIN_PORT), f"{other} -> {role}"
    # The shop's port still has its edges.
    assert policies.allows(points["outside"], points["web-gateway"], SHOP_PORT)
    assert policies.allows(points["api-gateway"], points["cart"], SHOP_PORT)


def test_content_reaches_no_bucket_when_none_is_configured():
    rendered = Rendered({"networkPolicies": {"enabled": True}})
    policies = NetworkPolicies(rendered.of_kind("NetworkPolicy"))
    content = endpoints_of(rendered)["content"]
    for port in (80, 443, 8000):
        assert not policies.allows(content, Endpoint("internet", ip="203.0.113.20"), port)


def test_network_policies_are_opt_in():
    assert not rendered_ci("default").of_kind("NetworkPolicy")
    assert not rendered_ci("minimal").of_kind("NetworkPolicy")


# ---- security -------------------------------------------------------------------------


@ci
def test_every_pod_and_container_runs_locked_down(ci_id):
    assert_locked_down(rendered_ci(ci_id))


def assert_locked_down(rendered: Rendered) -> None:
    """Every pod and container of `rendered` runs as the restricted Pod Security Standard
    asks, as its image's own user, with requests and limits."""
    for w in rendered.workloads():
        name = w["metadata"]["name"]
        spec = pod_spec(w)
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        # A token only for a pod that asks the API (service discovery), as its own
        # ServiceAccount, which a RoleBinding of the chart binds.
        if spec["automountServiceAccountToken"] is not False:
            bound = {s["name"] for b in rendered.of_kind("RoleBinding") for s in b["subjects"]}
            assert spec["automountServiceAccountToken"] is True and spec["serviceAccountName"] in bound, name
        for c in containers(w, init=True):
            sc = c["securityContext"]
            where = f"{name}/{c['name']}"
            assert sc["runAsNonRoot"] is True, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc.get("privileged", False) is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            repository = c["image"].rsplit(":", 1)[0]
            image = next(k for k in IMAGE_USERS if repository == k or repository.endswith("/" + k))
            # The image's user, unless the values leave the user to the platform
            # (OpenShift): then no container and no pod names one.
            if "runAsUser" in sc or "runAsUser" in pod:
                assert sc["runAsUser"] == IMAGE_USERS[image], where
            else:
                assert rendered.values.get("containerSecurityContext", {}).get("runAsUser", 0) is None, where
            assert c["resources"].get("requests") and c["resources"].get("limits"), where
            assert "hostNetwork" not in spec and "hostPID" not in spec, where


@ci
def test_stores_get_the_writable_mounts_they_need(ci_id):
    rendered = rendered_ci(ci_id)
    for w in rendered.workloads():
        component = pod_labels(w)[COMPONENT]
        mounts = {m["mountPath"] for c in containers(w) for m in c.get("volumeMounts", [])}
        if component.endswith("-data") or component.endswith("-data-replica"):
            needed = {"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"} if component == "product-data" else {"/data"}
            assert needed <= mounts, component
            # Their image's group owns the volume, unless the platform assigns one (OpenShift).
            fs_group = pod_spec(w)["securityContext"].get("fsGroup")
            assert fs_group in ((70 if component == "product-data" else 1000), None), component
            assert fs_group or rendered.values.get("podSecurityContext", {}).get("fsGroup", 0) is None, component


# ---- secrets and configuration --------------------------------------------------------


def test_the_session_secret_is_generated_into_a_secret_the_web_gateway_reads():
    rendered = rendered_ci("default")
    secret = rendered.secret_value(f"{RELEASE}-session", "session-secret")
    assert re.fullmatch(r"[A-Za-z0-9]{48}", secret)
    container = rendered.role_container("web-gateway")
    (var,) = [v for v in container["env"] if v["name"] == "ECOMMERCE_SESSION_SECRET"]
    assert var["valueFrom"]["secretKeyRef"] == {"name": f"{RELEASE}-session", "key": "session-secret"}
    for role in ROLES:
        assert ("ECOMMERCE_SESSION_SECRET" in rendered.role_env(role)) == (role == "web-gateway")


def test_a_given_session_secret_and_password_are_used_as_they_are():
    rendered = rendered_ci("full")
    assert rendered.role_env("web-gateway")["ECOMMERCE_SESSION_SECRET"] == "a-fixed-session-secret-for-tests"
    url = urlsplit(rendered.role_env("product")["ECOMMERCE_PRODUCT_DATA"])
    assert url.password == "not-a-real-password"


def test_the_secrets_templates_keep_generated_values_across_upgrades():
    # Offline rendering cannot run `lookup`, so check the template asks for the live Secret
    # before generating a new value.
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    assert 'lookup "v1" "Secret" $root.Release.Namespace $name' in helpers
    assert "randAlphaNum" in helpers


def test_pods_roll_when_a_value_they_read_through_a_secret_changes():
    checksum = lambda r: r.get("Deployment", f"{RELEASE}-cart")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]  # noqa: E731
    base = Rendered({})
    assert checksum(base) == checksum(Rendered({}))
    assert checksum(base) != checksum(Rendered({"otel": {"headers": "x-key=1"}}))
    assert checksum(base) != checksum(Rendered({"sessionSecret": "s3cret"}))
    with_token = Rendered({"admin": {"token": "t0ken-1"}})
    assert checksum(base) != checksum(with_token) != checksum(Rendered({"admin": {"token": "t0ken-2"}}))
    assert checksum(base) != checksum(Rendered({"admin": {"existingSecret": "shop-ops"}}))
    assert checksum(base) != checksum(Rendered({"admin": {"existingSecret": {"name": "shop-ops", "key": "t"}}}))
    # Live faults are not read at start: no roll (test_switching_a_live_fault_rolls_no_pod).
    assert checksum(base) == checksum(Rendered({"faults": {"paymentFailure": 0.5, "trafficSpike": True}}))


ADMIN_TOKEN = "Adm1n-t0ken-that-must-stay-in-its-Secret"


def admin_token_vars(rendered: Rendered, container: dict) -> list[dict]:
    return [v for v in container.get("env", []) if v["name"] == "ECOMMERCE_ADMIN_TOKEN"]


@ci
def test_every_role_gets_the_admin_token_and_nothing_else_does(ci_id):
    rendered = rendered_ci(ci_id)
    own = rendered.values.get("admin", {}).get("existingSecret") in (None, "", {"name": ""})
    for role in ROLES:
        assert rendered.role_env(role)["ECOMMERCE_ADMIN_TOKEN"], role
    assert (f"{RELEASE}-admin" in rendered.names("Secret")) == own
    # Nothing but the roles gets it: not the stores, the synthetics, product's migrate or
    # the hook Job (which writes the fault state directly).
    for w in rendered.workloads():
        for c in containers(w, init=True):
            if c is not containers(w)[0] or pod_labels(w)[COMPONENT] not in ROLES:
                assert not admin_token_vars(rendered, c), f"{w['metadata']['name']}/{c['name']}"


def test_a_default_install_generates_an_admin_token_into_the_charts_secret():
    rendered = rendered_ci("default")
    token = rendered.secret_value(f"{RELEASE}-admin", "admin-token")
    assert re.fullmatch(r"[A-Za-z0-9]{32}", token)
    for role in ROLES:
        (var,) = admin_token_vars(rendered, rendered.role_container(role))
        assert var["valueFrom"] == {"secretKeyRef": {"name": f"{RELEASE}-admin", "key": "admin-token"}}, role
    # Kept across upgrades: the template reads the live Secret before making a new token
    # (test_the_secrets_templates_keep_generated_values_across_upgrades).
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    assert re.search(r'define "ecommerce.adminToken".*\n.*keptSecret', helpers)


def test_an_admin_token_reaches_every_role_from_the_charts_secret_only():
    values = {"admin": {"token": ADMIN_TOKEN}}
    rendered = Rendered(values)
    assert rendered.secret_value(f"{RELEASE}-admin", "admin-token") == ADMIN_TOKEN
    secret = rendered.get("Secret", f"{RELEASE}-admin")
    assert secret["data"] == {"admin-token": base64.b64encode(ADMIN_TOKEN.encode()).decode()}
    for role in ROLES:
        (var,) = admin_token_vars(rendered, rendered.role_container(role))
        assert var == {
            "name": "ECOMMERCE_ADMIN_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": f"{RELEASE}-admin", "key": "admin-token"}},
        }, role
        assert rendered.role_env(role)["ECOMMERCE_ADMIN_TOKEN"] == ADMIN_TOKEN
    # In no plain value, annotation, ConfigMap or NOTES: only base64 in its Secret.
    text = render_text(values)
    assert ADMIN_TOKEN not in text
    assert text.count(base64.b64encode(ADMIN_TOKEN.encode()).decode()) == 1


@pytest.mark.parametrize("token", ["", ADMIN_TOKEN], ids=["alone", "over-a-token"])
@pytest.mark.parametrize(
    "existing,ref",
    [
        ({"name": "shop-operations", "key": "token"}, {"name": "shop-operations", "key": "token"}),
        # The name alone, as before: the key admin-token.
        ("shop-operations", {"name": "shop-operations", "key": "admin-token"}),
    ],
    ids=["name-and-key", "name-alone"],
)
def test_an_existing_secret_holds_the_admin_token_instead(token, existing, ref):
    values = {"admin": {"token": token, "existingSecret": existing}}
    rendered = Rendered(values)
    for role in ROLES:
        (var,) = admin_token_vars(rendered, rendered.role_container(role))
        assert var["valueFrom"] == {"secretKeyRef": ref}, role
    # The Secret is the user's: the chart makes none, and a token given too goes nowhere.
    assert f"{RELEASE}-admin" not in rendered.names("Secret")
    assert "shop-operations" not in rendered.names("Secret")
    if token:
        text = render_text(values)
        assert token not in text and base64.b64encode(token.encode()).decode() not in text


FULL_COLLECTOR = "http://otel-collector.observability:4318"


def resource_attributes(text: str) -> dict[str, str]:
    """OTEL_RESOURCE_ATTRIBUTES as the binary reads it: key=value,... percent-decoded."""
    pairs = [item.split("=", 1) for item in text.split(",")]
    assert all(len(p) == 2 for p in pairs), text
    return {k: unquote(v) for k, v in pairs}


def test_opentelemetry_settings_reach_every_role():
    rendered = rendered_ci("full")
    for role in ROLES:
        env = rendered.role_env(role)
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == FULL_COLLECTOR
        assert env["OTEL_EXPORTER_OTLP_HEADERS"] == "x-api-key=not-a-real-key"
        assert resource_attributes(env["OTEL_RESOURCE_ATTRIBUTES"]) == {
            "deployment.environment.name": "staging",
            "k8s.namespace.name": NAMESPACE,
            "k8s.pod.name": f"{RELEASE}-{role}{POD_SUFFIX}",
        }, role
        assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
        assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
        # service.name is the role, which the binary knows; the chart does not override it.
        assert "OTEL_SERVICE_NAME" not in env
    # Without the observability stack or an endpoint, nothing is exported.
    for role in ROLES:
        assert not any(k.startswith("OTEL_") for k in rendered_ci("observability-off").role_env(role))
        assert "POD_NAME" not in rendered_ci("observability-off").role_env(role)


def test_the_pod_name_comes_from_the_downward_api_before_the_attributes_that_use_it():
    rendered = rendered_ci("full")
    for role in ROLES:
        env = rendered.role_container(role)["env"]
        names = [v["name"] for v in env]
        pod_name = env[names.index("POD_NAME")]
        assert pod_name["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        attributes = env[names.index("OTEL_RESOURCE_ATTRIBUTES")]
        assert "k8s.pod.name=$(POD_NAME)" in attributes["value"].split(",")
        assert names.index("POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES"), role


@ci
def test_every_variable_reference_names_a_variable_declared_before_it(ci_id):
    # Kubernetes leaves a $(NAME) of a later or unknown variable as it is, silently.
    rendered = rendered_ci(ci_id)
    for w in rendered.workloads():
        for c in containers(w, init=True):
            declared = []
            for var in c.get("env", []):
                for name in references(var.get("value", "")):
                    assert name in declared, f"{w['metadata']['name']}/{c['name']} {var['name']}: $({name})"
                declared.append(var["name"])


def test_the_environment_defaults_to_the_namespace_and_the_sampler_to_the_parents_choice():
    rendered = Rendered({"otel": {"endpoint": "http://collector:4318"}})
    for role in ROLES:
        env = rendered.role_env(role)
        attributes = resource_attributes(env["OTEL_RESOURCE_ATTRIBUTES"])
        assert attributes["deployment.environment.name"] == NAMESPACE
        assert env["OTEL_TRACES_SAMPLER"] == "parentbased_always_on"
        # Only the ratio samplers take an argument.
        assert "OTEL_TRACES_SAMPLER_ARG" not in env
        assert "OTEL_EXPORTER_OTLP_HEADERS" not in env


@pytest.mark.parametrize(
    "sampler,expected",
    [
        ({"name": "always_on"}, ("always_on", None)),
        ({"name": "always_off"}, ("always_off", None)),
        ({"name": "traceidratio", "ratio": 0.1}, ("traceidratio", "0.1")),
        ({"name": "parentbased_traceidratio", "ratio": 0}, ("parentbased_traceidratio", "0")),
        ({"name": "parentbased_traceidratio"}, ("parentbased_traceidratio", "1")),
        ({"name": "parentbased_always_off", "ratio": 0.5}, ("parentbased_always_off", None)),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else None,
)
def test_the_sampler_reaches_every_role(sampler, expected):
    rendered = Rendered({"otel": {"endpoint": "http://collector:4318", "sampler": sampler}})
    for role in ROLES:
        env = rendered.role_env(role)
        assert (env["OTEL_TRACES_SAMPLER"], env.get("OTEL_TRACES_SAMPLER_ARG")) == expected, role


def test_an_environment_name_cannot_break_the_attribute_list_or_be_expanded():
    environment = "eu west, 100% $(HOME)=prod"
    rendered = Rendered({"otel": {"endpoint": "http://collector:4318", "environment": environment}})
    container = rendered.role_container("cart")
    raw = next(v["value"] for v in container["env"] if v["name"] == "OTEL_RESOURCE_ATTRIBUTES")
    assert references(raw) == ["POD_NAME"]
    attributes = resource_attributes(rendered.role_env("cart")["OTEL_RESOURCE_ATTRIBUTES"])
    assert attributes["deployment.environment.name"] == environment
    assert len(attributes) == 3


def test_nothing_but_the_headers_is_passed_without_an_endpoint():
    otel = {"headers": "x-key=1", "environment": "prod", "sampler": {"name": "always_on", "ratio": 1}}
    rendered = Rendered({"otel": otel, "observability": {"enabled": False}})
    for role in ROLES:
        env = rendered.role_env(role)
        assert {k for k in env if k.startswith("OTEL_") or k == "POD_NAME"} == {"OTEL_EXPORTER_OTLP_HEADERS"}


# ---- exposure, availability, scaling ----------------------------------------------------


def test_the_web_gateway_is_the_shops_only_external_service():
    rendered = rendered_ci("default")
    external = [s["metadata"]["name"] for s in rendered.of_kind("Service") if s["spec"].get("type", "ClusterIP") != "ClusterIP"]
    assert external == [f"{RELEASE}-web-gateway"]
    assert rendered.get("Service", f"{RELEASE}-web-gateway")["spec"]["type"] == "LoadBalancer"
    assert rendered_ci("minimal").get("Service", f"{RELEASE}-web-gateway")["spec"]["type"] == "ClusterIP"
    assert not rendered.of_kind("Ingress")
    (ingress,) = rendered_ci("full").of_kind("Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == f"{RELEASE}-web-gateway"


@ci
def test_roles_with_more_than_one_pod_have_a_disruption_budget(ci_id):
    rendered = rendered_ci(ci_id)
    budgets = rendered.names("PodDisruptionBudget")
    enabled = rendered.values.get("podDisruptionBudgets", {}).get("enabled", True)
    for role in ROLES:
        deployment = rendered.get("Deployment", f"{RELEASE}-{role}")
        hpa = [h for h in rendered.of_kind("HorizontalPodAutoscaler") if h["metadata"]["name"] == f"{RELEASE}-{role}"]
        least = hpa[0]["spec"]["minReplicas"] if hpa else deployment["spec"]["replicas"]
        assert (f"{RELEASE}-{role}" in budgets) == (enabled and least > 1), role


def test_autoscaled_roles_leave_replicas_to_the_autoscaler():
    rendered = rendered_ci("full")
    scaled = {h["spec"]["scaleTargetRef"]["name"]: h for h in rendered.of_kind("HorizontalPodAutoscaler")}
    assert set(scaled) == {f"{RELEASE}-web-gateway", f"{RELEASE}-api-gateway"}
    for name, hpa in scaled.items():
        assert "replicas" not in rendered.get("Deployment", name)["spec"]
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert not rendered_ci("default").of_kind("HorizontalPodAutoscaler")


def test_minimal_values_run_one_pod_per_role_and_no_synthetics():
    rendered = rendered_ci("minimal")
    for d in rendered.of_kind("Deployment"):
        assert d["spec"]["replicas"] == 1, d["metadata"]["name"]
    assert f"{RELEASE}-synthetics" not in rendered.names("Deployment")


def notes_of(values: dict) -> str:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE)["ecommerce/templates/NOTES.txt"]


def test_notes_tell_how_to_reach_the_shop_and_switch_a_fault_on():
    notes = notes_of({})
    assert f"service/{RELEASE}-web-gateway 8080:80" in notes
    assert "--set faults." in notes
    # Metrics: on the pods' admin port, not behind the Service.
    assert f"deployment/{RELEASE}-cart 9090:9090" in notes
    assert "curl http://127.0.0.1:9090/metrics" in notes
    # bind-localhost is the one fault that restarts pods.
    assert "faults.bindLocalhost=true is the exception" in notes


def test_notes_tell_how_to_read_the_admin_token_and_switch_faults_at_run_time():
    cases = [
        ({}, f"{RELEASE}-admin", "admin-token", "generated"),
        ({"token": ADMIN_TOKEN}, f"{RELEASE}-admin", "admin-token", "admin.token"),
        ({"existingSecret": "ops"}, "ops", "admin-token", "your Secret"),
        ({"existingSecret": {"name": "ops", "key": "shop.token"}}, "ops", "shop\\.token", "your Secret"),
    ]
    for admin, secret, key, origin in cases:
        notes = notes_of({"admin": admin})
        assert (
            f"TOKEN=$(kubectl get secret {secret} -n {NAMESPACE} -o jsonpath='{{.data.{key}}}' | base64 -d)" in notes
        ), admin
        assert origin in notes, admin
        # The fault page and the API, on the shop's address (the port-forward above).
        assert "http://127.0.0.1:8080/admin/faults" in notes
        assert 'curl -X PUT http://127.0.0.1:8080/api/v1/admin/faults -H "Authorization: Bearer $TOKEN"' in notes
        assert 'curl -X PUT http://127.0.0.1:8080/api/v1/admin/traffic -H "Authorization: Bearer $TOKEN"' in notes
        assert ADMIN_TOKEN not in notes


def test_notes_list_the_faults_the_values_set():
    assert "Faults these values set" not in notes_of({})
    notes = notes_of({"faults": {"paymentFailure": 0.5, "bindLocalhost": True, "trafficSpike": True}})
    listed = notes[notes.index("Faults these values set:"):]
    assert "  payment-failure=0.5\n" in listed
    assert "  bind-localhost (the api-gateway's pods start with it)" in listed
    assert "traffic level 10" in listed


# ---- the image and the binary -----------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    return instructions[last_from:]


def test_the_image_is_built_with_the_command_the_tests_build_with():
    runs = [rest for keyword, rest in dockerfile_instructions() if keyword == "RUN"]
    cargo = [re.sub(r"--mount=\S+\s*", "", r).strip() for r in runs if "cargo" in r]
    assert cargo == ["cargo build --release --locked"]
    script = (ROOT / "scripts" / "test-chart.sh").read_text()
    assert re.search(r"^cargo build --release --locked$", script, re.M)
    assert Path(os.environ.get("ECOMMERCE_BIN", ROOT / "target/release/ecommerce")).resolve() == (
        ROOT / "target/release/ecommerce"
    ).resolve(), "the checks below must run the binary the image ships"


def test_the_image_s_other_build_steps_run_here_and_gather_what_the_binary_links(tmp_path):
    # Every RUN besides the cargo build, run as written but with its output folder (/out)
    # moved under tmp_path: it must succeed and leave libgcc_s where the final stage
    # copies it from.
    runs = [rest for keyword, rest in dockerfile_instructions() if keyword == "RUN"]
    others = [r for r in runs if "cargo" not in r]
    assert others, "the Dockerfile gathers libgcc_s in a RUN step"
    for run in others:
        subprocess.run(["bash", "-c", run.replace("/out", str(tmp_path / "out"))], check=True)
    gathered = list((tmp_path / "out").rglob("libgcc_s.so.1"))
    assert len(gathered) == 1 and gathered[0].stat().st_size > 0
    copies = [rest for keyword, rest in final_stage() if keyword == "COPY"]
    assert any(c.split()[-2:] == ["/out/", "/"] for c in copies), copies


def test_the_image_runs_the_binary_as_the_user_the_chart_expects():
    stage = dict(final_stage())
    assert stage["FROM"].startswith("gcr.io/distroless/base-nossl-debian12")
    assert "/target/release/ecommerce /usr/local/bin/ecommerce" in stage["COPY"]
    assert json.loads(stage["ENTRYPOINT"]) == ["ecommerce"]
    assert json.loads(stage["CMD"])[:3] == ["serve", "--role", "all"]
    assert stage["EXPOSE"] == "8080"
    user = stage["USER"].split(":")[0]
    assert user.isdigit() and int(user) == IMAGE_USERS["ecommerce"], "numeric, so runAsNonRoot can be checked"


def test_the_final_image_has_every_library_the_binary_links():
    # base-nossl has glibc (libc, libm, the loader); the Dockerfile adds libgcc_s.
    provided = {"linux-vdso.so.1", "libc.so.6", "libm.so.6", "libgcc_s.so.1"}
    out = subprocess.run(["ldd", str(binary())], capture_output=True, text=True, check=True).stdout
    linked = {line.split()[0] for line in out.splitlines() if line.strip()}
    missing = {lib for lib in linked - provided if "ld-linux" not in lib}
    assert not missing, f"the image lacks {missing}"
    assert "libgcc_s.so.1" in (ROOT / "Dockerfile").read_text()


def test_the_build_context_leaves_out_what_the_build_does_not_need():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert {"target/", ".git/"} <= set(ignored) and any("node_modules" in i for i in ignored)
    assert not any(i.startswith("assets") or i.startswith("src") for i in ignored)


@functools.cache
def ca_certificate_file() -> Path:
    """A CA certificate (PEM) standing in for an external store's, made once per run."""
    folder = Path(tempfile.mkdtemp(prefix="chart-ca-"))
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.crt"), "-subj", "/CN=chart test CA", "-days", "1"],
        check=True, capture_output=True,
    )
    return folder / "ca.crt"


@functools.cache
def binary() -> Path:
    path = Path(os.environ.get("ECOMMERCE_BIN", ROOT / "target/release/ecommerce"))
    assert path.is_file(), f"{path} is missing: run scripts/test-chart.sh, which builds it"
    return path


@functools.cache
def help_text(subcommand: str) -> str:
    """`ecommerce <subcommand> --help`; a nested one is written with a space: "faults set"."""
    return subprocess.run([binary(), *subcommand.split(), "--help"], capture_output=True, text=True, check=True).stdout


def subcommand_of(args: list[str]) -> str:
    """The (possibly nested) subcommand a container's arguments run: "serve", "faults set"."""
    words = [args[0]]
    for arg in args[1:]:
        if arg.startswith("-") or not re.search(rf"^  {re.escape(arg)}\s", help_text(" ".join(words)), re.M):
            break
        words.append(arg)
    return " ".join(words)


def test_the_images_default_command_is_a_valid_invocation():
    cmd = json.loads(dict(final_stage())["CMD"])
    flags = [a for a in cmd[1:] if a.startswith("--")]
    assert cmd[0] == "serve" and all(f"{f} " in help_text("serve") for f in flags)


# Variables the binary reads that are not options of its own, so `--help` does not list
# them: the OpenTelemetry SDK's standard ones and logging's.
STANDARD_VARIABLES = {
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_LOGS_EXPORTER",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_BSP_SCHEDULE_DELAY",
    "RUST_LOG",
}


# Variables that only carry a value for later ones to expand as $(NAME).
HELPER_VARIABLES = {"POD_NAME", "CART_DATA_PASSWORD", "SESSION_DATA_PASSWORD", "PRODUCT_DATA_PASSWORD"}


@functools.cache
def binary_bytes() -> bytes:
    return binary().read_bytes()


def test_the_binary_reads_the_standard_variables_the_chart_may_pass():
    # The binary looks each one up by name, so the name is among its strings.
    data = binary_bytes()
    missing = [name for name in sorted(STANDARD_VARIABLES) if name.encode() not in data]
    assert not missing, f"the binary never reads {missing}"


@ci
def test_every_flag_and_variable_the_chart_passes_is_one_the_binary_knows(ci_id):
    rendered = rendered_ci(ci_id)
    checked = set()
    for w in rendered.workloads():
        for c in containers(w, init=True):
            if not c["image"].startswith(containers(rendered.workload_of("cart"))[0]["image"]):
                continue
            subcommand = subcommand_of(c["args"])
            text = help_text(subcommand)
            for flag in (a for a in c["args"][1:] if a.startswith("--")):
                assert f"{flag} " in text, f"{subcommand} has no {flag}"
            env = c.get("env", [])
            for i, var in enumerate(env):
                name = var["name"]
                if name in STANDARD_VARIABLES:
                    continue
                checked.add(name)
                if name in HELPER_VARIABLES:
                    # Not for the binary: a value (the downward API's pod name, a store's
                    # password from its Secret) there for a later variable to expand.
                    assert "valueFrom" in var, var
                    assert any(name in references(v.get("value", "")) for v in env[i + 1:]), c["name"]
                    continue
                upstream = re.fullmatch(r"ECOMMERCE_UPSTREAM_([A-Z]+)", name)
                if upstream:
                    assert "ECOMMERCE_UPSTREAM_<NAME>" in text and upstream[1].lower() in UPSTREAMS
                else:
                    assert f"[env: {name}" in text, f"`{subcommand}` knows no {name}"
    # The variables every values file sets were among those checked.
    assert {"ECOMMERCE_ADMIN_LISTEN", "ECOMMERCE_API_GATEWAY_URL", "ECOMMERCE_PRODUCT_DATA",
            "ECOMMERCE_FAULT_STATE", "ECOMMERCE_ADMIN_TOKEN"} <= checked


def local_command(
    rendered: Rendered, role: str, listen: str, admin_listen: str, more_env: dict[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The arguments and environment of `role`'s container, as in its pod, but with its two
    listeners moved to local addresses: `listen` for the shop's port, `admin_listen` for
    the admin port."""
    args = list(rendered.role_container(role)["args"])
    args[args.index("--listen") + 1] = listen
    env = {"PATH": os.environ.get("PATH", ""), "RUST_LOG": "info", **rendered.role_env(role), **(more_env or {})}
    assert env["ECOMMERCE_ADMIN_LISTEN"].startswith("0.0.0.0:"), role
    env["ECOMMERCE_ADMIN_LISTEN"] = admin_listen
    if "ECOMMERCE_CA_FILE" in env:
        # The mounted CA, here a certificate of the test's own.
        env["ECOMMERCE_CA_FILE"] = str(ca_certificate_file())
    return [str(binary()), *args], env


@functools.cache
def role_starts() -> dict[str, list[str]]:
    """Every role of every ci values file, started at once with the chart's own arguments
    and environment but on free local ports, then stopped with SIGTERM (together, so that
    their drains overlap): what went wrong, by values file."""
    processes = {}
    for ci_id in CI_IDS:
        rendered = rendered_ci(ci_id)
        grace = pod_spec(rendered.workload_of("cart"))["terminationGracePeriodSeconds"]
        for role in ROLES:
            args, env = local_command(rendered, role, "127.0.0.1:0", "127.0.0.1:0")
            log = tempfile.TemporaryFile("w+")
            process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
            processes[(ci_id, role)] = (process, log, grace)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and all(p.poll() is None for p, _, _ in processes.values()):
        time.sleep(0.1)
    exited = {key: p.poll() for key, (p, _, _) in processes.items()}
    for key, (process, _, _) in processes.items():
        if exited[key] is None:
            process.send_signal(signal.SIGTERM)
    failures = {ci_id: [] for ci_id in CI_IDS}
    for (ci_id, role), (process, log, grace) in processes.items():
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.seek(0)
        output = log.read()
        log.close()
        if exited[(ci_id, role)] is not None:
            failures[ci_id].append(f"{role} refused the chart's configuration (exit {exited[(ci_id, role)]}):\n{output}")
        elif process.returncode != 0:
            failures[ci_id].append(f"{role} did not stop cleanly on SIGTERM within its grace period ({process.returncode}):\n{output}")
    return failures


@ci
def test_every_role_starts_with_the_configuration_the_chart_gives_it(ci_id):
    # The chart's own arguments and environment, but on free local ports: the binary
    # accepts them (bad configuration exits at once with code 2), starts serving, and on
    # SIGTERM drains and stops within the pod's grace period. Its stores are not there;
    # that is not bad configuration (SPEC §3).
    failures = role_starts()[ci_id]
    assert not failures, "\n".join(failures)


# ---- the chart's configuration at work in the binary --------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    """An HTTP call; its status and JSON answer (4xx and 5xx included)."""
    status, text = fetch(url, method, body, token)
    return status, json.loads(text or "{}")


@contextlib.contextmanager
def serving(rendered: Rendered, role: str, more_env: dict[str, str] | None = None):
    """`role` run with the chart's arguments and environment (as in its pod), each of its
    container ports moved to a free local one; yields the base URL of each by the port's
    name ("http": the shop's, behind the Service; "admin") once both answer /healthz."""
    ports = {"http": free_port(), "admin": free_port()}
    assert set(container_ports(rendered.role_container(role))) == set(ports)
    # No drain when the test is done with it (test_operations drains a role as the chart says).
    more_env = {"ECOMMERCE_DRAIN_SECS": "0", **(more_env or {})}
    args, env = local_command(rendered, role, f"127.0.0.1:{ports['http']}", f"127.0.0.1:{ports['admin']}", more_env)
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 10
            for base in urls.values():
                while True:
                    assert process.poll() is None, f"{role} exited ({process.returncode})"
                    try:
                        with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                            break
                    except OSError:
                        assert time.monotonic() < deadline, f"{role} never answered {base}/healthz"
                        time.sleep(0.1)
            yield urls
        except BaseException:
            log.seek(0)
            print(log.read())
            raise
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_the_admin_token_lets_whoever_holds_it_switch_a_pods_faults():
    rendered = Rendered({"admin": {"token": ADMIN_TOKEN}})
    switch = {"faults": ["payment-failure=0.5"]}
    # On the pod's admin port, which is where NOTES.txt sends a port-forward.
    with serving(rendered, "payment") as urls:
        url = urls["admin"]
        status, shown = call("GET", f"{url}/faults")
        assert status == 200 and shown["switchable"] is True and shown["faults"] == []
        assert call("PUT", f"{url}/faults", switch)[0] == 401
        assert call("PUT", f"{url}/faults", switch, token="not-" + ADMIN_TOKEN)[0] == 401
        status, switched = call("PUT", f"{url}/faults", switch, token=ADMIN_TOKEN)
        assert status == 200 and switched["faults"] == ["payment-failure=0.5"], switched
        assert call("GET", f"{url}/faults")[1]["faults"] == ["payment-failure=0.5"]
    # A default install switches with the token the chart generated, and no other.
    default = rendered_ci("default")
    generated = default.secret_value(f"{RELEASE}-admin", "admin-token")
    with serving(default, "payment") as urls:
        assert call("GET", f"{urls['admin']}/faults")[1]["switchable"] is True
        assert call("PUT", f"{urls['admin']}/faults", switch, token=ADMIN_TOKEN)[0] == 401
        assert call("PUT", f"{urls['admin']}/faults", switch, token=generated)[0] == 200


@pytest.fixture
def fault_state():
    """A Redis of the test's own standing in for session-data: the fault state's URL on it
    (database 1, as the chart's)."""
    server = shutil.which("redis-server")
    assert server, "redis-server is needed (apt-get install redis-server; scripts/test.sh installs it)"
    port = free_port()
    process = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_hook_job(rendered: Rendered, fault_state: str) -> None:
    """The hook Job's command, as in its pod, writing to `fault_state`."""
    (container,) = containers(faults_job(rendered))
    env = {"PATH": os.environ.get("PATH", ""), **rendered.env(container), "ECOMMERCE_FAULT_STATE": fault_state}
    done = subprocess.run([str(binary()), *container["args"]], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"the hook Job's command failed ({done.returncode}): {done.stdout}{done.stderr}"


def eventually(what, seconds: float = 5):
    """Waits until `what()` is true (the roles apply a change within 2 s); its last value."""
    deadline = time.monotonic() + seconds
    while not (value := what()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def test_the_hook_jobs_faults_reach_running_roles_without_a_restart(fault_state):
    # Every role, the Job included, as in its pod; only the fault state's address differs.
    full, default = rendered_ci("full"), rendered_ci("default")
    live = {"ECOMMERCE_FAULT_STATE": fault_state}
    with serving(full, "payment", live) as payment, serving(full, "web-gateway", live) as web:
        faults = lambda: call("GET", f"{payment['admin']}/faults")[1]["faults"]  # noqa: E731
        level = lambda: call("GET", f"{web['http']}/api/v1/traffic")[1].get("level")  # noqa: E731
        assert "payment-failure=0.25" not in faults()
        # Install with every fault and a traffic spike.
        run_hook_job(full, fault_state)
        assert eventually(lambda: {"payment-failure=0.25", "payment-latency=1500"} <= set(faults())), faults()
        assert eventually(lambda: level() == 7.5), level()
        # An upgrade to values without faults switches them off, in the same processes.
        run_hook_job(default, fault_state)
        assert eventually(lambda: not [f for f in faults() if f.startswith("payment-")]), faults()
        assert eventually(lambda: level() == 1), level()


def fetch(url: str, method: str = "GET", body: dict | None = None, token: str | None = None) -> tuple[int, str]:
    """An HTTP call; its status and body as text, whatever their kind."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def json_object(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@pytest.mark.parametrize("role", ROLES)
def test_probes_and_scrapes_find_their_endpoints_where_the_chart_points_them(role):
    rendered = Rendered({"admin": {"token": ADMIN_TOKEN}})
    container = rendered.role_container(role)
    annotations = pod_annotations(rendered.workload_of(role))
    name_of_port = {number: name for name, number in container_ports(container).items()}
    with serving(rendered, role) as urls:
        # Each probe's path, on the port it names, is the endpoint the probe means: the
        # liveness one answers 200 while the role serves; the readiness one gives the
        # readiness report (503 may be right here: this role's stores are absent).
        for probe in (p for p in PROBES if p in container):
            get = container[probe]["httpGet"]
            status, text = fetch(urls[get["port"]] + get["path"])
            if probe == "readinessProbe":
                assert status in (200, 503) and "ready" in (json_object(text) or {}), (probe, get, status, text)
            else:
                assert status == 200, (probe, get, status, text)
        # Prometheus, led by the pod's annotations, finds the role's metrics.
        scraped = name_of_port[int(annotations["prometheus.io/port"])]
        status, text = fetch(urls[scraped] + annotations["prometheus.io/path"])
        assert status == 200 and "# TYPE" in text, (status, text[:200])
        # The shop's port, the one behind the Service (the web-gateway's: the internet's),
        # serves /healthz and none of the operational endpoints: no metrics, no readiness
        # report, no fault switching.
        shop = urls["http"]
        assert fetch(f"{shop}/healthz")[0] == 200
        assert "# TYPE" not in fetch(f"{shop}/metrics")[1]
        for path in ("/readyz", "/faults"):
            status, text = fetch(shop + path)
            assert status != 200 or json_object(text) is None, (path, status, text[:200])
        switch = {"faults": ["memory-leak=" + role]}
        assert fetch(f"{shop}/faults", "PUT", switch, token=ADMIN_TOKEN)[0] != 200
        assert call("GET", f"{urls['admin']}/faults")[1]["faults"] == []


def test_the_synthetics_wait_for_a_path_the_web_gateways_service_serves():
    rendered = rendered_ci("default")
    (wait, *_) = pod_spec(rendered.get("Deployment", f"{RELEASE}-synthetics"))["initContainers"]
    (path,) = re.findall(r"\$BASE_URL(/[^\"\s]*)", wait["command"][-1])
    # BASE_URL is the Service's port 80, which leads to the pods' shop port ("http").
    assert rendered.env(wait)["BASE_URL"] == f"http://{RELEASE}-web-gateway:80"
    assert rendered.get("Service", f"{RELEASE}-web-gateway")["spec"]["ports"][0]["targetPort"] == "http"
    with serving(rendered, "web-gateway") as urls:
        status, text = fetch(urls["http"] + path)
        assert status == 200 and json_object(text) is not None, (path, status, text[:200])


class Collector(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP receiver that keeps every export it is sent."""

    def __init__(self):
        self.exports: list[tuple[str, dict[str, str], bytes]] = []
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                collector.exports.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def collector():
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_role_exports_its_spans_as_the_charts_opentelemetry_values_say(collector):
    environment = "chart-export-check"
    rendered = Rendered({"otel": {"endpoint": collector.url, "headers": "x-api-key=k3y-for-the-check", "environment": environment}})
    # Batches every 100 ms instead of 5 s, so the check is quick.
    with serving(rendered, "payment", {"OTEL_BSP_SCHEDULE_DELAY": "100"}) as urls:
        assert call("GET", f"{urls['http']}/")[0] == 200
        deadline = time.monotonic() + 10
        while not any(e[0] == "/v1/traces" for e in collector.exports) and time.monotonic() < deadline:
            time.sleep(0.1)
    # Spans, that is: the role may send its logs to the same collector (/v1/logs).
    spans = [export for export in collector.exports if export[0] == "/v1/traces"]
    assert spans, f"no spans reached the collector: {[e[0] for e in collector.exports]}"
    path, headers, body = spans[0]
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["x-api-key"] == "k3y-for-the-check"
    # The resource's attributes, as protobuf strings: the environment, namespace and the pod
    # name Kubernetes gives $(POD_NAME).
    for text in ["deployment.environment.name", environment, "k8s.namespace.name", "k8s.pod.name",
                 f"{RELEASE}-payment{POD_SUFFIX}", "service.name", "payment"]:
        assert text.encode() in body, text
    assert b"$(POD_NAME)" not in body
