"""The chart's observability stack (values `observability:`), proven without a cluster.

Rendered with the real Helm library as test_chart.py does, whose helpers this reuses: on
(the default), off, with the Prometheus Operator, and with everything on. Every object is
validated strictly (the Operator's PodMonitor and PrometheusRule against the Operator's own
schemas, as published in the cloudcoil-models-prometheus-operator package); the wiring is
checked end to end: the roles export to the collector's Service, the collector's pipelines
name only what its configuration defines, header values come from Secrets, the rendered
Prometheus configuration passes `promtool check config` with the rule files laid out as
mounted, each scrape job keeps exactly its role's pods on the admin port, Grafana's data
sources and dashboards are the chart's, and the NetworkPolicies allow exactly the stack's
edges.

The dashboards and rules are the chart's files (dashboards/*.json, rules/*.yaml); while a
folder has none, a copy of the chart with a sample file stands in.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import helm_python as helm
import jsonschema
import pytest
import yaml
from kubernetes_validate import utils as kube_validate

from test_chart import (
    CHART,
    COMPONENT,
    DEFAULT_ADMIN_PORT,
    KUBE_VERSIONS,
    NAMESPACE,
    PORTS,
    RELEASE,
    ROLES,
    SHOP_PORT,
    TOPOLOGY,
    Endpoint,
    NetworkPolicies,
    Rendered,
    assert_locked_down,
    container_ports,
    containers,
    endpoints_of,
    load_values,
    merged,
    matches,
    pod_labels,
    pod_spec,
    render_fails,
    rendered_ci,
    service_ports,
)

ROOT = CHART.parents[2]
# Debian's (scripts/test-chart.sh finds or unpacks it).
PROMTOOL = Path(os.environ.get("PROMTOOL", "/usr/bin/promtool"))
STACK = ["collector", "jaeger", "prometheus", "grafana", "loki"]
# Each part's listening ports, as its Service and the NetworkPolicies know them.
OTLP_HTTP, OTLP_GRPC, JAEGER_UI, PROMETHEUS_PORT, GRAFANA_PORT, LOKI_PORT = 4318, 4317, 16686, 9090, 3000, 3100
TREND_STATS = "p(50),p(95),p(99),max"

EXPORTER = {
    "name": "vendor",
    "endpoint": "https://otlp.vendor.example.com",
    "headers": {"x-api-key": "k3y-in-the-charts-secret", "x-tenant": "shop"},
}
OWN_SECRET_EXPORTER = {
    "name": "team",
    "endpoint": "http://otlp.team.example.com:4318",
    "existingSecret": {"name": "team-otlp", "keys": {"authorization": "token"}},
}
# Everything on at once: the chart's Prometheus, Loki, and exporters (so the collector
# scrapes too), network policies with a UI peer.
EVERYTHING = {
    "observability": {
        "logs": {"enabled": True},
        "collector": {"exporters": [EXPORTER, OWN_SECRET_EXPORTER]},
    },
    "networkPolicies": {
        "enabled": True,
        "extraIngressFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
        "uiIngressFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
    },
}
OFF = {"observability": {"enabled": False}}

SAMPLE_DASHBOARD = {
    "title": "Sample",
    "uid": "sample",
    "schemaVersion": 39,
    "panels": [{"type": "timeseries", "title": "Requests", "datasource": {"type": "prometheus", "uid": "prometheus"},
                "targets": [{"expr": 'sum by (job) (rate(http_server_requests_total{job="cart"}[5m]))'}]}],
}
SAMPLE_RULES = """groups:
  - name: sample
    rules:
      - record: job:http_server_requests:rate5m
        expr: sum by (job) (rate(http_server_requests_total[5m]))
      - alert: SampleDown
        expr: up{job="cart"} == 0
        for: 5m
        annotations:
          summary: '{{ $labels.pod }} is down'
"""


# ---- the chart, with its dashboards and rules ----------------------------------------------


@functools.cache
def chart_with_files() -> Path:
    """A copy of the chart (links resolved) whose dashboards/ and rules/ hold at least one
    file each: the chart's own, or a sample while it has none. Never the chart itself."""
    import tempfile

    target = Path(tempfile.mkdtemp(prefix="ecommerce-chart-")) / "ecommerce"
    shutil.copytree(CHART, target, symlinks=False)
    (target / "dashboards").mkdir(exist_ok=True)
    (target / "rules").mkdir(exist_ok=True)
    if not list((target / "dashboards").glob("*.json")):
        (target / "dashboards" / "sample.json").write_text(json.dumps(SAMPLE_DASHBOARD, indent=2))
    if not list((target / "rules").glob("*.yaml")):
        (target / "rules" / "sample.yaml").write_text(SAMPLE_RULES)
    return target


@pytest.fixture(scope="session", autouse=True)
def _remove_the_chart_copy():
    yield
    if chart_with_files.cache_info().currsize:
        shutil.rmtree(chart_with_files().parent, ignore_errors=True)


def files_of(folder: str, pattern: str) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((chart_with_files() / folder).glob(pattern))}


def render(values: dict | None = None) -> Rendered:
    return Rendered(values or {}, chart=chart_with_files())


@functools.cache
def chart_defaults() -> dict:
    return load_values(CHART / "values.yaml")


def effective(values: dict) -> dict:
    return merged(chart_defaults(), values)


VARIANTS = {
    "default": {},
    "off": OFF,
    "operator": load_values(CHART / "ci" / "operator-values.yaml"),
    "everything": EVERYTHING,
}
variants = pytest.mark.parametrize("variant", list(VARIANTS))


@functools.cache
def rendered_variant(variant: str) -> Rendered:
    return render(VARIANTS[variant])


def stack_parts(values: dict) -> dict[str, bool]:
    """What the values ask to run, by the rules the values' comments state."""
    obs = effective(values)["observability"]
    on = obs["enabled"]
    operator = on and obs["prometheusOperator"]["enabled"]
    collector = on and obs["collector"]["enabled"]
    return {
        "collector": collector,
        "jaeger": on and obs["jaeger"]["enabled"],
        "prometheus": on and obs["prometheus"]["enabled"] and not operator,
        "operator": operator,
        "grafana": on and obs["grafana"]["enabled"],
        "loki": on and obs["logs"]["enabled"],
        "exporters": collector and bool(obs["collector"]["exporters"]),
        "roles_export": collector and not effective(values)["otel"]["endpoint"],
    }


def workload(rendered: Rendered, part: str) -> dict:
    return rendered.workload_of(part)


def config_of(rendered: Rendered, name: str, key: str) -> dict:
    return yaml.safe_load(rendered.get("ConfigMap", name)["data"][key])


def collector_config(rendered: Rendered) -> dict:
    return config_of(rendered, f"{RELEASE}-collector", "config.yaml")


def prometheus_config(rendered: Rendered) -> dict:
    return config_of(rendered, f"{RELEASE}-prometheus", "prometheus.yml")


def grafana_datasources(rendered: Rendered) -> dict[str, dict]:
    sources = config_of(rendered, f"{RELEASE}-grafana", "datasources.yaml")["datasources"]
    return {s["uid"]: s for s in sources}


def volume_files(rendered: Rendered, w: dict, volume: dict) -> dict[str, str]:
    """What a ConfigMap or projected volume shows in its mount: relative path -> text."""
    sources = volume["projected"]["sources"] if "projected" in volume else [volume]
    out = {}
    for source in sources:
        ref = source["configMap"]
        data = rendered.get("ConfigMap", ref["name"]).get("data") or {}
        items = ref.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            out[item["path"]] = data[item["key"]]
    return out


def mounted(rendered: Rendered, w: dict, container: dict, mount_path: str) -> dict[str, str]:
    """The files a container sees under mount_path (a ConfigMap or projected volume, whole
    or by subPath)."""
    out = {}
    for mount in container.get("volumeMounts", []):
        volume = next(v for v in pod_spec(w)["volumes"] if v["name"] == mount["name"])
        if "configMap" not in volume and "projected" not in volume:
            continue
        files = volume_files(rendered, w, volume)
        sub = mount.get("subPath")
        if sub:
            files = {k.removeprefix(sub + "/"): v for k, v in files.items() if k.startswith(sub + "/")}
        base = mount["mountPath"].rstrip("/")
        for rel, text in files.items():
            path = f"{base}/{rel}"
            if path.startswith(mount_path.rstrip("/") + "/"):
                out[path.removeprefix(mount_path.rstrip("/") + "/")] = text
    return out


def url_of_service(rendered: Rendered, url: str) -> tuple[dict, int]:
    """The Service a URL names (http://<service>:<port>...) and the port, which it exposes."""
    match = re.fullmatch(r"(?:https?://)?([a-z0-9-]+):(\d+)(/.*)?", url)
    assert match, url
    service = rendered.get("Service", match[1])
    port = int(match[2])
    assert port in service_ports(service), url
    return service, port


def target_container_port(rendered: Rendered, service: dict, port: int) -> int:
    """The container port a Service's port leads to."""
    (spec,) = [p for p in service["spec"]["ports"] if p["port"] == port]
    (target,) = [w for w in rendered.workloads() if matches(service["spec"]["selector"], pod_labels(w))]
    named = {n: number for c in containers(target) for n, number in container_ports(c).items()}
    return named[spec["targetPort"]] if isinstance(spec["targetPort"], str) else spec["targetPort"]


# ---- what is deployed ---------------------------------------------------------------------


@variants
def test_the_stack_runs_what_the_values_switch_on(variant):
    rendered = rendered_variant(variant)
    parts = stack_parts(VARIANTS[variant])
    components = {pod_labels(w)[COMPONENT] for w in rendered.workloads()}
    for part in STACK:
        assert (part in components) == parts[part], part
        assert (f"{RELEASE}-{part}" in rendered.names("Service")) == parts[part], part
    assert bool(rendered.of_kind("PodMonitor")) == parts["operator"]
    assert bool(rendered.of_kind("PrometheusRule")) == parts["operator"]


def test_the_whole_stack_but_loki_is_on_by_default():
    parts = stack_parts({})
    assert parts == {"collector": True, "jaeger": True, "prometheus": True, "operator": False,
                     "grafana": True, "loki": False, "exporters": False, "roles_export": True}


def test_the_stack_off_renders_none_of_it_and_the_roles_export_nothing():
    rendered = rendered_variant("off")
    for obj in rendered.objects:
        labels = obj["metadata"].get("labels", {})
        assert labels.get(COMPONENT) not in STACK, f"{obj['kind']} {obj['metadata']['name']}"
    assert not {"Role", "RoleBinding", "PodMonitor", "PrometheusRule"} & {o["kind"] for o in rendered.objects}
    # The one ServiceAccount is the shop's, which asks the API nothing.
    assert rendered.names("ServiceAccount") == {RELEASE}
    for role in ROLES:
        env = rendered.role_env(role)
        assert not [k for k in env if k.startswith("OTEL_")], role
    k6 = containers(rendered.get("Deployment", f"{RELEASE}-synthetics"))[0]
    assert "--out" not in k6["args"]
    assert not [v for v in k6["env"] if v["name"].startswith("K6_PROMETHEUS")]
    # The ci values file says the same.
    assert {o["metadata"]["name"] for o in rendered_ci("observability-off").objects} == {
        o["metadata"]["name"] for o in Rendered(OFF).objects
    }


def test_a_collector_with_nowhere_to_send_is_refused():
    message = render_fails({"observability": {"jaeger": {"enabled": False}}})
    assert "observability.collector has nowhere to send" in message


def test_two_exporters_of_one_name_are_refused():
    message = render_fails({"observability": {"collector": {"exporters": [EXPORTER, {**OWN_SECRET_EXPORTER, "name": "vendor"}]}}})
    assert "each name may appear once" in message


# ---- validation -----------------------------------------------------------------------------


@variants
def test_every_object_validates_strictly(variant):
    failures = []
    for obj in rendered_variant(variant).objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # the Operator's kinds: the test below
        for version in KUBE_VERSIONS:
            try:
                kube_validate.validate(obj, version, strict=True)
            except (kube_validate.ValidationError, kube_validate.SchemaNotFoundError) as e:
                failures.append(f"{obj['kind']}/{obj['metadata']['name']} @ {version}: {e.message}")
    assert not failures, "\n".join(failures)


def strict(schema):
    """A JSON schema in which every object with properties allows no others (the way
    kubernetes-validate's strict mode treats the built-in kinds). Go's regular expressions
    may set a flag after "^", which Python's want first."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        if isinstance(out.get("pattern"), str):
            out["pattern"] = re.sub(r"^\^\(\?([a-z]+)\)", r"(?\1)^", out["pattern"])
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@functools.cache
def operator_validator(kind: str) -> jsonschema.protocols.Validator:
    # The Prometheus Operator's CRD schemas, as the models generated from them (v0.80) carry.
    from cloudcoil.models.prometheus_operator import v1

    schema = strict(getattr(v1, kind).model_json_schema(by_alias=True))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def operator_errors(obj: dict) -> list[str]:
    return [f"{'.'.join(map(str, e.path))}: {e.message}" for e in operator_validator(obj["kind"]).iter_errors(obj)]


def test_the_operators_objects_validate_against_its_schemas():
    rendered = rendered_variant("operator")
    objects = rendered.of_kind("PodMonitor") + rendered.of_kind("PrometheusRule")
    assert {o["kind"] for o in objects} == {"PodMonitor", "PrometheusRule"}
    for obj in objects:
        assert obj["apiVersion"] == "monitoring.coreos.com/v1"
        assert not operator_errors(obj), (obj["metadata"]["name"], operator_errors(obj))


@pytest.mark.parametrize("kind,path,field", [
    ("PodMonitor", ("spec",), "podMetricsEndpoint"),
    ("PodMonitor", ("spec", "podMetricsEndpoints", 0), "paht"),
    ("PrometheusRule", ("spec", "groups", 0), "rule"),
])
def test_the_operator_schemas_reject_an_unknown_field(kind, path, field):
    # The control for the test above.
    obj = copy.deepcopy(rendered_variant("operator").of_kind(kind)[0])
    where = obj
    for step in path:
        where = where[step]
    where[field] = "x"
    assert operator_errors(obj)


# ---- the roles and the collector ------------------------------------------------------------


@pytest.mark.parametrize("variant,logs", [("default", "none"), ("operator", "otlp"), ("everything", "otlp")])
def test_the_roles_export_to_the_collectors_service(variant, logs):
    rendered = rendered_variant(variant)
    for role in ROLES:
        env = rendered.role_env(role)
        endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert endpoint == f"http://{RELEASE}-collector:{OTLP_HTTP}", role
        service, port = url_of_service(rendered, endpoint)
        assert target_container_port(rendered, service, port) == OTLP_HTTP
        assert matches(service["spec"]["selector"], pod_labels(workload(rendered, "collector")))
        # Logs go out only where something keeps them (Loki, an exporter).
        assert env["OTEL_LOGS_EXPORTER"] == logs, role
        assert "OTEL_TRACES_EXPORTER" not in env, role
        assert env["OTEL_TRACES_SAMPLER"] == "parentbased_always_on"
    receivers = collector_config(rendered)["receivers"]["otlp"]["protocols"]
    assert receivers["http"]["endpoint"] == f"0.0.0.0:{OTLP_HTTP}"
    assert receivers["grpc"]["endpoint"] == f"0.0.0.0:{OTLP_GRPC}"


def test_otel_endpoint_still_names_a_collector_of_ones_own():
    rendered = render({"otel": {"endpoint": "http://otel.observability:4318"}})
    for role in ROLES:
        env = rendered.role_env(role)
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel.observability:4318"
        # That collector takes every signal: the roles send it their logs too.
        assert env["OTEL_LOGS_EXPORTER"] == "otlp"


def test_without_a_traces_destination_the_roles_send_logs_only():
    rendered = render({"observability": {"jaeger": {"enabled": False}, "logs": {"enabled": True}}})
    assert set(collector_config(rendered)["service"]["pipelines"]) == {"logs"}
    env = rendered.role_env("cart")
    assert (env["OTEL_TRACES_EXPORTER"], env["OTEL_LOGS_EXPORTER"]) == ("none", "otlp")


COLLECTOR_PIPELINES = {
    "default": {"traces": ("otlp", ["otlp/jaeger"])},
    "operator": {
        "traces": ("otlp", ["otlp/jaeger", "otlphttp/vendor"]),
        "metrics": ("prometheus", ["otlphttp/vendor"]),
        "logs": ("otlp", ["otlphttp/loki", "otlphttp/vendor"]),
    },
    "everything": {
        "traces": ("otlp", ["otlp/jaeger", "otlphttp/vendor", "otlphttp/team"]),
        "metrics": ("prometheus", ["otlphttp/vendor", "otlphttp/team"]),
        "logs": ("otlp", ["otlphttp/loki", "otlphttp/vendor", "otlphttp/team"]),
    },
}


@pytest.mark.parametrize("variant", list(COLLECTOR_PIPELINES))
def test_the_collectors_pipelines_name_only_what_its_configuration_defines(variant):
    config = collector_config(rendered_variant(variant))
    service = config["service"]
    pipelines = service["pipelines"]
    assert {name: (p["receivers"][0], p["exporters"]) for name, p in pipelines.items()} == COLLECTOR_PIPELINES[variant]
    used = {kind: set() for kind in ("receivers", "processors", "exporters")}
    for name, pipeline in pipelines.items():
        assert pipeline["exporters"], f"{name}: a pipeline without an exporter"
        for kind in used:
            assert len(set(pipeline[kind])) == len(pipeline[kind]), (name, kind)
            used[kind] |= set(pipeline[kind])
    for kind, names in used.items():
        # Everything named is defined, and everything defined is used.
        assert names == set(config[kind]), (kind, names, set(config[kind]))
    assert set(service["extensions"]) == set(config["extensions"]) == {"health_check"}
    # The health check the probes ask for.
    health = int(config["extensions"]["health_check"]["endpoint"].rsplit(":", 1)[1])
    collector = containers(workload(rendered_variant(variant), "collector"))[0]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container_ports(collector)[collector[probe]["httpGet"]["port"]] == health


def test_the_collector_sends_traces_to_jaegers_otlp_grpc_port():
    rendered = rendered_variant("default")
    exporter = collector_config(rendered)["exporters"]["otlp/jaeger"]
    assert exporter["tls"] == {"insecure": True}
    service, port = url_of_service(rendered, exporter["endpoint"])
    assert port == OTLP_GRPC and target_container_port(rendered, service, port) == OTLP_GRPC
    jaeger = config_of(rendered, f"{RELEASE}-jaeger", "config.yaml")
    assert jaeger["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == f"0.0.0.0:{OTLP_GRPC}"


@pytest.mark.parametrize("variant", ["operator", "everything"])
def test_every_exporter_of_the_values_sends_its_headers_from_a_secret(variant):
    rendered = rendered_variant(variant)
    values = effective(VARIANTS[variant])
    config = collector_config(rendered)
    collector = containers(workload(rendered, "collector"))[0]
    env = {v["name"]: v for v in collector.get("env", [])}
    for exporter in values["observability"]["collector"]["exporters"]:
        rendered_exporter = config["exporters"][f"otlphttp/{exporter['name']}"]
        assert rendered_exporter["endpoint"] == exporter["endpoint"]
        own = exporter.get("existingSecret", {"keys": {}})
        expected = sorted({*exporter.get("headers", {}), *own["keys"]})
        assert sorted(rendered_exporter["headers"]) == expected
        for header, value in rendered_exporter["headers"].items():
            variable = re.fullmatch(r"\$\{env:([A-Z0-9_]+)\}", value)
            assert variable, (header, value)
            ref = env[variable[1]]["valueFrom"]["secretKeyRef"]
            if header in own["keys"]:
                assert ref == {"name": own["name"], "key": own["keys"][header]}
            else:
                assert ref["name"] == f"{RELEASE}-collector-headers"
                assert rendered.secret_value(ref["name"], ref["key"]) == exporter["headers"][header]
    # A header value is only ever base64 in its Secret: not in the ConfigMap, nor anywhere else.
    text = yaml.safe_dump_all(rendered.objects)
    for exporter in values["observability"]["collector"]["exporters"]:
        for value in exporter.get("headers", {}).values():
            if len(value) > 6:
                assert value not in text
    # The user's Secret is theirs: the chart makes none of that name.
    assert "team-otlp" not in rendered.names("Secret")


def test_the_collector_scrapes_the_roles_as_prometheus_does_and_only_for_exporters():
    rendered = rendered_variant("everything")
    config = collector_config(rendered)
    scrape = config["receivers"]["prometheus"]["config"]["scrape_configs"]
    assert scrape == prometheus_config(rendered)["scrape_configs"]
    # "$" would be the collector's own variable syntax: the configuration has none but
    # the header variables.
    assert "$" not in yaml.safe_dump(scrape)
    assert "prometheus" not in collector_config(rendered_variant("default"))["receivers"]
    # It discovers pods through the API, with a token of its own account.
    spec = pod_spec(workload(rendered, "collector"))
    assert spec["automountServiceAccountToken"] is True and spec["serviceAccountName"] == f"{RELEASE}-collector"
    assert pod_spec(workload(rendered_variant("default"), "collector"))["automountServiceAccountToken"] is False


# ---- Prometheus -------------------------------------------------------------------------------


def relabel(labels: dict[str, str], rules: list[dict]) -> dict[str, str] | None:
    """Prometheus' relabeling of one target's labels (the actions the chart uses); None
    when a rule drops the target."""
    labels = dict(labels)
    for rule in rules:
        action = rule.get("action", "replace")
        value = rule.get("separator", ";").join(labels.get(name, "") for name in rule.get("source_labels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if action == "keep" and not match:
            return None
        if action == "drop" and match:
            return None
        if action == "replace" and match:
            replacement = rule.get("replacement", "$1")
            labels[rule["target_label"]] = re.sub(r"\$\{?(\d+)\}?", lambda m: match.group(int(m[1])) or "", replacement)
        assert action in ("keep", "drop", "replace"), action
    return labels


def discovered_targets(rendered: Rendered) -> list[dict[str, str]]:
    """The targets Kubernetes service discovery (role: pod) finds in the release's
    namespace: one per container port of every pod, with the labels Prometheus gives them."""
    targets = []
    for w in rendered.workloads():
        labels = pod_labels(w)
        pod = f"{w['metadata']['name']}-5f7d9c8b6-x2k4q"
        for c in containers(w, init=True):
            for name, port in container_ports(c).items():
                target = {
                    "__address__": f"10.244.1.10:{port}",
                    "__meta_kubernetes_namespace": NAMESPACE,
                    "__meta_kubernetes_pod_name": pod,
                    "__meta_kubernetes_pod_phase": "Running",
                    "__meta_kubernetes_pod_container_name": c["name"],
                    "__meta_kubernetes_pod_container_port_name": name,
                    "__meta_kubernetes_pod_container_port_number": str(port),
                }
                for key, value in labels.items():
                    target["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
                targets.append(target)
    return targets


@pytest.mark.parametrize("values", [{}, {"admin": {"port": 9300}}], ids=["default", "admin-port-9300"])
def test_one_scrape_job_per_role_keeps_that_roles_pods_on_the_admin_port(values):
    rendered = render(values)
    port = effective(values)["admin"]["port"]
    jobs = prometheus_config(rendered)["scrape_configs"]
    assert [j["job_name"] for j in jobs] == sorted(ROLES)
    targets = discovered_targets(rendered)
    for job in jobs:
        role = job["job_name"]
        assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [NAMESPACE]}}]
        assert job["metrics_path"] == "/metrics" and job["scheme"] == "http"
        kept = [t for t in (relabel(t, job["relabel_configs"]) for t in targets) if t is not None]
        assert len(kept) == 1, (role, kept)
        (target,) = kept
        assert target["__meta_kubernetes_pod_label_app_kubernetes_io_component"] == role
        assert target["__address__"].endswith(f":{port}")
        assert target["__meta_kubernetes_pod_container_port_name"] == "admin"
        assert target["namespace"] == NAMESPACE and target["pod"].startswith(f"{RELEASE}-{role}-")
        # A finished pod is not scraped.
        finished = dict(next(t for t in targets if t["__meta_kubernetes_pod_name"] == target["pod"]
                             and t["__meta_kubernetes_pod_container_port_number"] == str(port)))
        finished["__meta_kubernetes_pod_phase"] = "Succeeded"
        assert relabel(finished, job["relabel_configs"]) is None


def lay_out_prometheus(rendered: Rendered, into: Path) -> Path:
    """Prometheus' configuration folder as its pod mounts it, written under `into`."""
    w = workload(rendered, "prometheus")
    prometheus = containers(w)[0]
    (config_flag,) = [a for a in prometheus["args"] if a.startswith("--config.file=")]
    config_path = config_flag.split("=", 1)[1]
    folder = str(Path(config_path).parent)
    files = mounted(rendered, w, prometheus, folder)
    for rel, text in files.items():
        (into / rel).parent.mkdir(parents=True, exist_ok=True)
        (into / rel).write_text(text)
    return into / Path(config_path).name


def promtool(*args: str) -> subprocess.CompletedProcess:
    assert PROMTOOL.is_file(), "promtool is missing: scripts/test-chart.sh installs it (Debian's prometheus)"
    return subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, timeout=60)


# What Prometheus reads in a kubernetes_sd_configs entry (discovery/kubernetes' SDConfig and
# the HTTP client settings it embeds), for the check Debian's promtool cannot make.
KUBERNETES_SD_FIELDS = {"api_server", "role", "kubeconfig_file", "namespaces", "selectors", "attach_metadata",
                        "basic_auth", "authorization", "oauth2", "bearer_token", "bearer_token_file",
                        "tls_config", "proxy_url", "follow_redirects", "enable_http2"}


def for_debian_promtool(config_file: Path) -> None:
    """Debian builds Prometheus without Kubernetes service discovery, so its promtool knows
    no kubernetes_sd_configs: check those entries here, field by field, and take them out
    of the file for promtool, which checks all the rest (jobs, relabeling, rule files)."""
    config = yaml.safe_load(config_file.read_text())
    for job in config["scrape_configs"]:
        for sd in job.pop("kubernetes_sd_configs", []):
            assert set(sd) <= KUBERNETES_SD_FIELDS, (job["job_name"], sd)
            assert sd["role"] in ("node", "service", "pod", "endpoints", "endpointslice", "ingress")
            assert set(sd.get("namespaces", {})) <= {"own_namespace", "names"}
            assert all(isinstance(n, str) and n for n in sd.get("namespaces", {}).get("names", []))
    config_file.write_text(yaml.safe_dump(config))


def test_debians_promtool_knows_no_kubernetes_discovery(tmp_path):
    # Why for_debian_promtool exists: should this promtool learn it, check the file whole.
    (tmp_path / "k.yml").write_text("scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs: [{role: pod}]\n")
    result = promtool("check", "config", str(tmp_path / "k.yml"))
    assert result.returncode != 0 and "kubernetes_sd_configs" in result.stdout + result.stderr


@pytest.mark.parametrize("values", [{}, {"admin": {"port": 9300}, "observability": {"prometheus": {"scrapeInterval": "30s"}}}],
                         ids=["default", "other-port-and-interval"])
def test_the_prometheus_configuration_passes_promtool_with_the_rules_as_mounted(values, tmp_path):
    rendered = render(values)
    config = lay_out_prometheus(rendered, tmp_path)
    for_debian_promtool(config)
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    rules = files_of("rules", "*.yaml")
    # Every rule file was checked, where the configuration names it.
    assert prometheus_config(rendered)["rule_files"] == [f"rules/{name}" for name in rules]
    for name in rules:
        assert f"rules/{name}" in result.stdout + result.stderr
        assert (tmp_path / "rules" / name).read_text() == rules[name]


def test_promtool_fails_a_broken_configuration(tmp_path):
    # The control for the test above: a rule file the configuration names but the mount
    # lacks, and a scrape job with an unknown field.
    config = lay_out_prometheus(render({}), tmp_path)
    for_debian_promtool(config)
    assert promtool("check", "config", str(config)).returncode == 0
    first = sorted((tmp_path / "rules").iterdir())[0]
    first.unlink()
    assert promtool("check", "config", str(config)).returncode != 0
    broken = yaml.safe_load(config.read_text())
    broken["rule_files"] = []
    broken["scrape_configs"][0]["scrape_intervall"] = "15s"
    config.write_text(yaml.safe_dump(broken))
    assert promtool("check", "config", str(config)).returncode != 0


def test_the_collectors_scrape_configuration_passes_promtool_too(tmp_path):
    scrape = collector_config(rendered_variant("everything"))["receivers"]["prometheus"]["config"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(scrape))
    for_debian_promtool(tmp_path / "prometheus.yml")
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_config_map_holds_exactly_the_rule_files():
    rendered = rendered_variant("default")
    assert rendered.get("ConfigMap", f"{RELEASE}-prometheus-rules")["data"] == files_of("rules", "*.yaml")
    # And the chart itself, whatever its rules/ holds now.
    own = {p.name: p.read_text() for p in sorted((CHART / "rules").glob("*.yaml"))}
    assert (Rendered({}).get("ConfigMap", f"{RELEASE}-prometheus-rules").get("data") or {}) == own


def test_prometheus_keeps_exemplars_takes_remote_write_and_forgets_on_schedule():
    rendered = render({"observability": {"prometheus": {"retention": {"time": "6h", "size": "512MB"}, "storageSize": "2Gi"}}})
    w = workload(rendered, "prometheus")
    prometheus = containers(w)[0]
    args = prometheus["args"]
    assert "--enable-feature=exemplar-storage" in args
    assert "--web.enable-remote-write-receiver" in args
    assert "--storage.tsdb.retention.time=6h" in args and "--storage.tsdb.retention.size=512MB" in args
    (data,) = [m for m in prometheus["volumeMounts"] if m["mountPath"] == "/prometheus"]
    assert "--storage.tsdb.path=/prometheus" in args
    volume = next(v for v in pod_spec(w)["volumes"] if v["name"] == data["name"])
    assert volume == {"name": data["name"], "emptyDir": {"sizeLimit": "2Gi"}}
    assert not rendered.of_kind("PersistentVolumeClaim")
    assert prometheus["image"].startswith("prom/prometheus:v3.")
    service, port = url_of_service(rendered, f"{RELEASE}-prometheus:{PROMETHEUS_PORT}")
    assert target_container_port(rendered, service, port) == PROMETHEUS_PORT


def test_prometheus_may_discover_pods_in_its_namespace_only():
    rendered = rendered_variant("default")
    assert not [o for o in rendered.objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    (role,) = [r for r in rendered.of_kind("Role") if r["metadata"]["name"] == f"{RELEASE}-prometheus"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods", "endpoints", "services"], "verbs": ["get", "list", "watch"]}]
    binding = rendered.get("RoleBinding", f"{RELEASE}-prometheus")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{RELEASE}-prometheus"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"{RELEASE}-prometheus", "namespace": NAMESPACE}]
    assert f"{RELEASE}-prometheus" in rendered.names("ServiceAccount")
    spec = pod_spec(workload(rendered, "prometheus"))
    assert spec["serviceAccountName"] == f"{RELEASE}-prometheus" and spec["automountServiceAccountToken"] is True


# ---- synthetics ------------------------------------------------------------------------------


@pytest.mark.parametrize("variant,writes", [("default", True), ("everything", True), ("operator", False), ("off", False)])
def test_the_synthetics_write_their_metrics_to_the_charts_prometheus(variant, writes):
    rendered = rendered_variant(variant)
    k6 = containers(rendered.get("Deployment", f"{RELEASE}-synthetics"))[0]
    env = rendered.env(k6)
    if not writes:
        assert "--out" not in k6["args"] and "K6_PROMETHEUS_RW_SERVER_URL" not in env
        return
    assert k6["args"] == ["run", "--no-summary", "--out", "experimental-prometheus-rw", "/scripts/journey.js"]
    assert env["K6_PROMETHEUS_RW_SERVER_URL"] == f"http://{RELEASE}-prometheus:{PROMETHEUS_PORT}/api/v1/write"
    assert env["K6_PROMETHEUS_RW_TREND_STATS"] == TREND_STATS
    service, port = url_of_service(rendered, env["K6_PROMETHEUS_RW_SERVER_URL"])
    assert matches(service["spec"]["selector"], pod_labels(workload(rendered, "prometheus")))


# ---- Grafana -----------------------------------------------------------------------------------


def test_grafanas_data_sources_are_the_stacks_services_with_exemplars_linked_to_jaeger():
    rendered = rendered_variant("default")
    sources = grafana_datasources(rendered)
    assert set(sources) == {"prometheus", "jaeger"}
    prometheus, jaeger = sources["prometheus"], sources["jaeger"]
    assert (prometheus["type"], jaeger["type"]) == ("prometheus", "jaeger")
    assert prometheus["isDefault"] is True
    assert prometheus["jsonData"]["exemplarTraceIdDestinations"] == [{"name": "trace_id", "datasourceUid": "jaeger"}]
    for source, part, port in [(prometheus, "prometheus", PROMETHEUS_PORT), (jaeger, "jaeger", JAEGER_UI)]:
        service, service_port = url_of_service(rendered, source["url"])
        assert matches(service["spec"]["selector"], pod_labels(workload(rendered, part)))
        assert target_container_port(rendered, service, service_port) == port


def test_with_logs_on_grafana_reads_loki_and_links_its_lines_to_their_traces():
    rendered = rendered_variant("everything")
    sources = grafana_datasources(rendered)
    assert set(sources) == {"prometheus", "jaeger", "loki"}
    loki = sources["loki"]
    service, port = url_of_service(rendered, loki["url"])
    assert target_container_port(rendered, service, port) == LOKI_PORT
    (field,) = loki["jsonData"]["derivedFields"]
    assert field["datasourceUid"] == "jaeger" and field["name"] == "trace_id"
    assert field["matcherType"] == "label" and field["matcherRegex"] == "trace_id"
    # "$$" is Grafana's escape of "$" in provisioning files: the link is ${__value.raw}.
    assert field["url"] == "$${__value.raw}"
    assert sources["jaeger"]["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "loki"
    # The collector sends logs to Loki's OTLP endpoint.
    exporter = collector_config(rendered)["exporters"]["otlphttp/loki"]
    assert exporter["endpoint"] == f"http://{RELEASE}-loki:{LOKI_PORT}/otlp"
    url_of_service(rendered, exporter["endpoint"])
    assert config_of(rendered, f"{RELEASE}-loki", "config.yaml")["limits_config"]["allow_structured_metadata"] is True


def test_with_the_operator_grafana_queries_its_prometheus():
    rendered = rendered_variant("operator")
    values = effective(VARIANTS["operator"])
    assert grafana_datasources(rendered)["prometheus"]["url"] == values["observability"]["prometheusOperator"]["prometheusUrl"]


@pytest.mark.parametrize("variant", ["default", "everything"])
def test_grafana_provisions_exactly_the_dashboards_of_the_chart(variant):
    rendered = rendered_variant(variant)
    w = workload(rendered, "grafana")
    grafana = containers(w)[0]
    env = rendered.env(grafana)
    provisioning = env["GF_PATHS_PROVISIONING"]
    (provider,) = yaml.safe_load(mounted(rendered, w, grafana, provisioning)["dashboards/dashboards.yaml"])["providers"]
    assert provider["type"] == "file"
    shown = mounted(rendered, w, grafana, provider["options"]["path"])
    assert shown == files_of("dashboards", "*.json")
    assert rendered.get("ConfigMap", f"{RELEASE}-grafana-dashboards")["data"] == files_of("dashboards", "*.json")
    for text in shown.values():
        json.loads(text)
    datasources = yaml.safe_load(mounted(rendered, w, grafana, provisioning)["datasources/datasources.yaml"])
    assert {s["uid"] for s in datasources["datasources"]} == set(grafana_datasources(rendered))
    # And the chart itself, whatever its dashboards/ holds now.
    own = {p.name: p.read_text() for p in sorted((CHART / "dashboards").glob("*.json"))}
    assert (Rendered({}).get("ConfigMap", f"{RELEASE}-grafana-dashboards").get("data") or {}) == own


def test_grafana_lets_anyone_view_and_keeps_its_admin_password_in_a_secret():
    rendered = rendered_variant("default")
    grafana = containers(workload(rendered, "grafana"))[0]
    env = rendered.env(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true" and env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    (var,) = [v for v in grafana["env"] if v["name"] == "GF_SECURITY_ADMIN_PASSWORD"]
    assert var["valueFrom"]["secretKeyRef"] == {"name": f"{RELEASE}-grafana", "key": "admin-password"}
    assert re.fullmatch(r"[A-Za-z0-9]{24}", env["GF_SECURITY_ADMIN_PASSWORD"])
    # Offline rendering cannot run `lookup`: check the helper reads the Secret back first.
    helpers = (CHART / "templates" / "_observability.tpl").read_text()
    assert 'include "ecommerce.keptSecret"' in helpers and '"admin-password"' in helpers
    off = render({"observability": {"grafana": {"anonymousViewer": False}}})
    assert off.env(containers(workload(off, "grafana"))[0])["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_grafanas_admin_password_may_be_given_or_come_from_ones_own_secret():
    given = render({"observability": {"grafana": {"admin": {"password": "a-given-Passw0rd"}}}})
    assert given.env(containers(workload(given, "grafana"))[0])["GF_SECURITY_ADMIN_PASSWORD"] == "a-given-Passw0rd"
    own = render({"observability": {"grafana": {"admin": {"existingSecret": {"name": "ops-grafana", "key": "pw"}}}}})
    (var,) = [v for v in containers(workload(own, "grafana"))[0]["env"] if v["name"] == "GF_SECURITY_ADMIN_PASSWORD"]
    assert var["valueFrom"]["secretKeyRef"] == {"name": "ops-grafana", "key": "pw"}
    assert f"{RELEASE}-grafana" not in own.names("Secret") and "ops-grafana" not in own.names("Secret")


# ---- the Prometheus Operator -----------------------------------------------------------------


def test_the_operator_scrapes_every_role_as_a_job_named_after_it():
    rendered = rendered_variant("operator")
    values = effective(VARIANTS["operator"])
    monitors = {m["metadata"]["name"]: m for m in rendered.of_kind("PodMonitor")}
    assert set(monitors) == {f"{RELEASE}-{role}" for role in ROLES}
    for role in ROLES:
        monitor = monitors[f"{RELEASE}-{role}"]
        assert values["observability"]["prometheusOperator"]["labels"].items() <= monitor["metadata"]["labels"].items()
        selected = [w for w in rendered.workloads() if matches(monitor["spec"]["selector"], pod_labels(w))]
        assert [pod_labels(w)[COMPONENT] for w in selected] == [role]
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert container_ports(rendered.role_container(role))[endpoint["port"]] == DEFAULT_ADMIN_PORT
        assert endpoint["path"] == "/metrics"
        # The job label is the role's name, whatever the Operator would call the job.
        job = [r for r in endpoint["relabelings"] if r.get("targetLabel") == "job"]
        assert job == [{"action": "replace", "targetLabel": "job", "replacement": role}]
    for kind in ("ConfigMap", "Deployment", "Service", "ServiceAccount", "Role"):
        assert f"{RELEASE}-prometheus" not in rendered.names(kind), kind


def test_the_operator_loads_a_prometheus_rule_per_rule_file():
    rendered = rendered_variant("operator")
    values = effective(VARIANTS["operator"])
    rules = files_of("rules", "*.yaml")
    by_file = {r["metadata"]["annotations"]["ecommerce/rule-file"]: r for r in rendered.of_kind("PrometheusRule")}
    assert set(by_file) == {f"rules/{name}" for name in rules}
    for name, text in rules.items():
        rule = by_file[f"rules/{name}"]
        assert rule["spec"]["groups"] == yaml.safe_load(text)["groups"]
        assert values["observability"]["prometheusOperator"]["labels"].items() <= rule["metadata"]["labels"].items()


# ---- rolling on change ---------------------------------------------------------------------


def checksum(rendered: Rendered, part: str) -> str:
    return workload(rendered, part)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


@pytest.mark.parametrize("part,change", [
    ("collector", {"observability": {"collector": {"exporters": [EXPORTER]}}}),
    ("collector", {"observability": {"logs": {"enabled": True}}}),
    ("jaeger", {"observability": {"jaeger": {"maxTraces": 500}}}),
    ("prometheus", {"observability": {"prometheus": {"scrapeInterval": "30s"}}}),
    ("prometheus", {"admin": {"port": 9300}}),
    ("grafana", {"observability": {"logs": {"enabled": True}}}),
    ("grafana", {"observability": {"grafana": {"admin": {"password": "a-new-Passw0rd"}}}}),
])
def test_a_configuration_change_rolls_the_pods_that_read_it(part, change):
    assert checksum(render({}), part) == checksum(render({}), part)
    assert checksum(render({}), part) != checksum(render(change), part)


def test_a_changed_header_value_rolls_the_collector():
    one = {"observability": {"collector": {"exporters": [EXPORTER]}}}
    other = {"observability": {"collector": {"exporters": [{**EXPORTER, "headers": {"x-api-key": "another-k3y", "x-tenant": "shop"}}]}}}
    assert checksum(render(one), "collector") != checksum(render(other), "collector")


def test_changed_rules_and_dashboards_roll_prometheus_and_grafana(tmp_path):
    changed = tmp_path / "ecommerce"
    shutil.copytree(chart_with_files(), changed)
    (changed / "rules" / "zz-extra.yaml").write_text(SAMPLE_RULES.replace("sample", "extra"))
    (changed / "dashboards" / "zz-extra.json").write_text(json.dumps({**SAMPLE_DASHBOARD, "uid": "extra"}))
    before, after = render({}), Rendered({}, chart=changed)
    assert checksum(before, "prometheus") != checksum(after, "prometheus")
    assert checksum(before, "grafana") != checksum(after, "grafana")
    assert "zz-extra.yaml" in after.get("ConfigMap", f"{RELEASE}-prometheus-rules")["data"]
    assert "rules/zz-extra.yaml" in prometheus_config(after)["rule_files"]


# ---- security and resources -------------------------------------------------------------------


@variants
def test_every_pod_of_the_stack_runs_locked_down_with_probes_and_resources(variant):
    rendered = rendered_variant(variant)
    assert_locked_down(rendered)
    for w in rendered.workloads():
        if pod_labels(w)[COMPONENT] not in STACK:
            continue
        for c in containers(w):
            ports = container_ports(c)
            for probe in ("livenessProbe", "readinessProbe"):
                check = c[probe].get("httpGet") or c[probe].get("tcpSocket")
                assert check and check["port"] in ports, (w["metadata"]["name"], probe)
            # Writable places are emptyDirs with a size limit (none for a Secret or ConfigMap).
            for mount in c.get("volumeMounts", []):
                volume = next(v for v in pod_spec(w)["volumes"] if v["name"] == mount["name"])
                if "emptyDir" in volume:
                    assert volume["emptyDir"].get("sizeLimit"), (w["metadata"]["name"], mount)
                else:
                    assert mount.get("readOnly") is True, (w["metadata"]["name"], mount)


WRITABLE = {"prometheus": {"/prometheus"}, "grafana": {"/var/lib/grafana", "/tmp"}, "loki": {"/loki", "/tmp"}}


def test_each_part_has_the_writable_folders_it_needs():
    rendered = rendered_variant("everything")
    for part, needed in WRITABLE.items():
        w = workload(rendered, part)
        empty = {v["name"] for v in pod_spec(w)["volumes"] if "emptyDir" in v}
        writable = {m["mountPath"] for c in containers(w) for m in c["volumeMounts"] if m["name"] in empty}
        assert needed <= writable, part
    grafana = rendered.env(containers(workload(rendered, "grafana"))[0])
    assert grafana["GF_PATHS_DATA"] == "/var/lib/grafana" and grafana["GF_LOG_MODE"] == "console"


def cpu_millicores(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


def memory_mebibytes(quantity: str) -> int:
    units = {"Mi": 1, "Gi": 1024}
    return int(quantity[:-2]) * units[quantity[-2:]]


def stack_requests(rendered: Rendered) -> tuple[int, int]:
    cpu = memory = 0
    for w in rendered.workloads():
        if pod_labels(w)[COMPONENT] in STACK:
            for c in containers(w, init=True):
                cpu += cpu_millicores(c["resources"]["requests"]["cpu"]) * w["spec"]["replicas"]
                memory += memory_mebibytes(c["resources"]["requests"]["memory"]) * w["spec"]["replicas"]
    return cpu, memory


def test_the_stack_at_rest_asks_for_what_the_readme_says():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Watching the shop on Kubernetes", 1)[1].split("\n## ", 1)[0]
    cpu, memory = stack_requests(rendered_variant("default"))
    assert f"{cpu}m CPU and {memory}Mi" in section, (cpu, memory)
    cpu, memory = stack_requests(render({"observability": {"logs": {"enabled": True}}}))
    assert f"{cpu}m CPU and {memory}Mi" in section, (cpu, memory)


# ---- network policies ----------------------------------------------------------------------------

NP_VARIANTS = {
    # full: the roles export to a collector of the user's (otel.endpoint), not the chart's.
    "full": load_values(CHART / "ci" / "full-values.yaml"),
    "full-to-the-charts-collector": merged(load_values(CHART / "ci" / "full-values.yaml"), {"otel": {"endpoint": ""}}),
    "everything": EVERYTHING,
    "operator": load_values(CHART / "ci" / "operator-values.yaml"),
    "stack-off": merged(load_values(CHART / "ci" / "full-values.yaml"), OFF),
}
# Peers outside the release the values name: a Prometheus of the user's (extraIngressFrom),
# an ingress controller (uiIngressFrom).
OWN_PROMETHEUS = Endpoint("own-prometheus", {"app": "prometheus"}, namespace="monitoring")
INGRESS = Endpoint("ingress", {"app": "ingress-nginx"}, namespace="ingress-nginx")
KUBE_API = Endpoint("kube-api", ip="172.18.0.2")
INTERNET = Endpoint("internet", ip="203.0.113.20")


def expected_edges(values: dict) -> set[tuple[str, str, int]]:
    """(from, to, port) of every connection the policies should allow to a pod of the
    release: the shop's topology and, for the parts that run, the stack's edges."""
    values = effective(values)
    parts = stack_parts(values)
    admin = values["admin"]["port"]
    edges = {(a, b, PORTS[b]) for a, b in TOPOLOGY}
    # The shop's front door is open to all, the peers of the values included.
    edges |= {("own-prometheus", "web-gateway", SHOP_PORT), ("ingress", "web-gateway", SHOP_PORT)}
    for role in ROLES:
        if values["networkPolicies"]["extraIngressFrom"]:
            edges |= {("own-prometheus", role, SHOP_PORT), ("own-prometheus", role, admin)}
        if parts["roles_export"]:
            edges |= {(role, "collector", OTLP_HTTP), (role, "collector", OTLP_GRPC)}
        if parts["prometheus"]:
            edges.add(("prometheus", role, admin))
        if parts["exporters"]:
            edges.add(("collector", role, admin))
    if parts["prometheus"]:
        edges |= {("synthetics", "prometheus", PROMETHEUS_PORT), ("grafana", "prometheus", PROMETHEUS_PORT)}
    if parts["jaeger"]:
        edges |= {("collector", "jaeger", OTLP_GRPC), ("grafana", "jaeger", JAEGER_UI)}
    if parts["loki"]:
        edges |= {("collector", "loki", LOKI_PORT), ("grafana", "loki", LOKI_PORT)}
    if values["networkPolicies"]["uiIngressFrom"]:
        edges |= {("ingress", "grafana", GRAFANA_PORT), ("ingress", "jaeger", JAEGER_UI)}
    # An edge needs both ends.
    present = {*ROLES, "outside", "own-prometheus", "ingress", "synthetics", "faults", "migrate", "cart-data", "cart-data-replica",
               "session-data", "session-data-replica", "product-data", *(p for p in STACK if parts[p])}
    return {e for e in edges if e[0] in present and e[1] in present}


def expected_beyond(values: dict) -> set[tuple[str, str, int]]:
    """(from, address, port) of the connections to addresses outside the cluster's pods."""
    values = effective(values)
    parts = stack_parts(values)
    out = set()
    if values["content"]["source"]:
        out.add(("content", "internet", 8000))
    discovering = (["prometheus"] if parts["prometheus"] else []) + (["collector"] if parts["exporters"] else [])
    for part in discovering:
        out |= {(part, where, port) for where in ("kube-api", "internet") for port in (443, 6443)}
    if parts["exporters"]:
        out |= {("collector", where, 443) for where in ("kube-api", "internet")}
        if any(e["endpoint"].endswith(":4318") for e in values["observability"]["collector"]["exporters"]):
            out |= {("collector", where, 4318) for where in ("kube-api", "internet")}
    if parts["operator"] and parts["grafana"]:
        out |= {("grafana", where, PROMETHEUS_PORT) for where in ("kube-api", "internet")}
    return out


def listening_ports(w: dict) -> set[int]:
    return {port for c in containers(w) for port in container_ports(c).values()}


@pytest.mark.parametrize("variant", list(NP_VARIANTS))
def test_network_policies_allow_exactly_the_shop_and_its_stack(variant):
    values = NP_VARIANTS[variant]
    rendered = Rendered(values)
    policies = NetworkPolicies(rendered.of_kind("NetworkPolicy"))
    points = endpoints_of(rendered)
    ours = {name: p for name, p in points.items() if name != "outside"}
    ports_of = {pod_labels(w)[COMPONENT]: listening_ports(w) | {PORTS.get(pod_labels(w)[COMPONENT], SHOP_PORT)}
                for w in rendered.workloads()}
    expected = expected_edges(values)
    wrong = []
    for src in [*points.values(), OWN_PROMETHEUS, INGRESS]:
        for dst in ours.values():
            if src.name == dst.name:
                continue
            for port in sorted(ports_of[dst.name]):
                should = (src.name, dst.name, port) in expected
                if policies.allows(src, dst, port) != should:
                    wrong.append(f"{src} -> {dst}:{port} should be {'allowed' if should else 'denied'}")
    beyond = expected_beyond(values)
    dns = Endpoint("kube-dns", {"k8s-app": "kube-dns"}, namespace="kube-system", ip="10.96.0.10")
    for src in ours.values():
        assert policies.allows(src, dns, 53, "UDP") and policies.allows(src, dns, 53, "TCP"), src
        for where in (KUBE_API, INTERNET):
            for port in (443, 6443, 4318, 8000, PROMETHEUS_PORT):
                should = (src.name, where.name, port) in beyond
                if policies.allows(src, where, port) != should:
                    wrong.append(f"{src} -> {where}:{port} should be {'allowed' if should else 'denied'}")
    assert not wrong, "\n".join(wrong)


def test_the_stacks_edges_are_there_to_check():
    # The control for the test above: the variants do exercise every edge of the stack.
    everything = expected_edges(NP_VARIANTS["everything"])
    kinds = {(a if a not in ROLES else "role", b if b not in ROLES else "role") for a, b, _ in everything}
    assert {("role", "collector"), ("prometheus", "role"), ("collector", "role"), ("collector", "jaeger"),
            ("collector", "loki"), ("synthetics", "prometheus"), ("grafana", "prometheus"), ("grafana", "jaeger"),
            ("grafana", "loki"), ("ingress", "grafana"), ("ingress", "jaeger")} <= kinds
    policies = NetworkPolicies(Rendered(NP_VARIANTS["everything"]).of_kind("NetworkPolicy"))
    points = endpoints_of(Rendered(NP_VARIANTS["everything"]))
    assert policies.allows(points["cart"], points["collector"], OTLP_HTTP)
    assert not policies.allows(points["cart"], points["jaeger"], OTLP_GRPC)
    assert not policies.allows(points["outside"], points["grafana"], GRAFANA_PORT)


# ---- values, notes --------------------------------------------------------------------------------

BAD_VALUES = [
    {"observability": {"enabld": True}},
    {"observability": {"enabled": "yes"}},
    {"observability": {"collector": {"exporters": [{"name": "x"}]}}},
    {"observability": {"collector": {"exporters": [{"name": "Vendor", "endpoint": "https://o.example.com"}]}}},
    {"observability": {"collector": {"exporters": [{"name": "loki", "endpoint": "https://o.example.com"}]}}},
    {"observability": {"collector": {"exporters": [{"name": "x", "endpoint": "grpc://o.example.com"}]}}},
    {"observability": {"collector": {"exporters": [{"name": "x", "endpoint": "https://o.example.com", "headers": {"bad header": "v"}}]}}},
    {"observability": {"collector": {"exporters": [{"name": "x", "endpoint": "https://o.example.com", "headers": {"a": 1}}]}}},
    {"observability": {"collector": {"exporters": [{"name": "x", "endpoint": "https://o.example.com", "existingSecret": {"name": "s"}}]}}},
    {"observability": {"collector": {"exporters": [{"name": "x", "endpoint": "https://o.example.com", "tls": {}}]}}},
    {"observability": {"jaeger": {"maxTraces": 0}}},
    {"observability": {"prometheus": {"retention": {"time": "forever", "size": "1GB"}}}},
    {"observability": {"prometheus": {"retention": {"time": "1d", "size": "1Gi"}}}},
    {"observability": {"grafana": {"admin": {"existingSecret": {"name": "Bad_Name", "key": "k"}}}}},
    {"observability": {"grafana": {"anonymous": True}}},
    {"observability": {"logs": {"enabled": True, "retention": "a week"}}},
    {"observability": {"prometheusOperator": {"enabled": True, "prometheusUrl": "prometheus:9090"}}},
    {"networkPolicies": {"uiIngressFrom": {}}},
]


@pytest.mark.parametrize("values", BAD_VALUES, ids=[json.dumps(v) for v in BAD_VALUES])
def test_the_schema_rejects_a_bad_observability_value(values):
    message = render_fails(values)
    assert "schema" in message, message


def notes(values: dict) -> str:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE)["ecommerce/templates/NOTES.txt"]


def test_notes_tell_how_to_open_grafana_and_jaeger_and_see_an_incident():
    text = notes({})
    assert f"kubectl port-forward -n {NAMESPACE} service/{RELEASE}-grafana 3000:3000" in text
    assert f"kubectl port-forward -n {NAMESPACE} service/{RELEASE}-jaeger 16686:16686" in text
    assert "without signing in" in text
    assert f"kubectl get secret {RELEASE}-grafana -n {NAMESPACE} -o jsonpath='{{.data.admin-password}}' | base64 -d" in text
    assert "keeps across upgrades" in text
    assert "--set faults.paymentFailure=0.5" in text and "payment-failure" in text
    own = notes({"observability": {"grafana": {"admin": {"existingSecret": {"name": "ops", "key": "pass.word"}}}}})
    assert "kubectl get secret ops -n shop -o jsonpath='{.data.pass\\.word}'" in own
    off = notes(OFF)
    assert "grafana" not in off.lower() and "jaeger" not in off.lower()
    assert "PodMonitor" in notes(VARIANTS["operator"])
