"""The chart run for real: rollouts that fail no request, stores that lose nothing, the
catalog migrated once per release, secrets and stores of the user's own, and the settings
a platform imposes (OpenShift's users, ServiceAccounts, spreading, priorities).

Rendered with the real Helm library as test_chart.py does, whose helpers this reuses. The
Redis replica's readiness probe runs as rendered against real redis-server processes (a
primary and a replica on loopback ports), and a role drains as the chart configures it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from test_chart import (
    CHART,
    CLUSTER_CONFIGMAPS,
    CLUSTER_SECRETS,
    COMPONENT,
    RELEASE,
    ROLES,
    NetworkPolicies,
    Endpoint,
    Rendered,
    ci,
    containers,
    endpoints_of,
    fetch,
    free_port,
    help_text,
    load_values,
    local_command,
    merged,
    migrate_job,
    faults_job,
    pod_annotations,
    pod_labels,
    pod_spec,
    render_fails,
    render_text,
    rendered_ci,
)

REDIS_STORES = ["cart-data", "session-data"]
SERVERS = ["cart-data", "cart-data-replica", "session-data", "session-data-replica"]
EXTERNAL = load_values(CHART / "ci" / "external-stores-values.yaml")
OPENSHIFT = load_values(CHART / "ci" / "openshift-values.yaml")
EXISTING = load_values(CHART / "ci" / "existing-secrets-values.yaml")


def role_pods(rendered: Rendered) -> list[dict]:
    return [rendered.workload_of(role) for role in ROLES]


def env_vars(container: dict) -> dict[str, dict]:
    return {v["name"]: v for v in container.get("env", [])}


# ---- draining and rollouts ------------------------------------------------------------------


@ci
def test_every_role_drains_within_its_grace_period(ci_id):
    rendered = rendered_ci(ci_id)
    drain = rendered.values.get("drainSeconds", 5)
    timeout = rendered.values.get("shutdownTimeoutSeconds", 10)
    for role in ROLES:
        deployment = rendered.workload_of(role)
        env = rendered.role_env(role)
        assert (env["ECOMMERCE_DRAIN_SECS"], env["ECOMMERCE_SHUTDOWN_TIMEOUT_SECS"]) == (str(drain), str(timeout)), role
        # SIGKILL only after the drain and the in-flight requests' time, with a margin.
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
        assert drain + timeout < grace <= drain + timeout + 10, role
        # The binary drains itself: no preStop hook (the image has no shell to sleep in).
        assert "lifecycle" not in rendered.role_container(role), role
        # A new pod is ready before an old one stops.
        strategy = deployment["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate" and strategy["rollingUpdate"]["maxUnavailable"] == 0, role
    # Nothing else is told to drain: the stores, Jobs and synthetics are not the shop's roles.
    for w in rendered.workloads():
        if pod_labels(w)[COMPONENT] not in ROLES:
            assert not any("ECOMMERCE_DRAIN_SECS" in env_vars(c) for c in containers(w, init=True))


def test_a_role_drains_as_the_chart_configures_it():
    # A role with the chart's environment: on SIGTERM /readyz turns 503 while the role
    # still serves, for drainSeconds; then it exits, well within the grace period.
    rendered = Rendered({"drainSeconds": 2, "shutdownTimeoutSeconds": 3})
    grace = pod_spec(rendered.workload_of("payment"))["terminationGracePeriodSeconds"]
    http, admin = free_port(), free_port()
    args, env = local_command(rendered, "payment", f"127.0.0.1:{http}", f"127.0.0.1:{admin}")
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while fetch_status(f"http://127.0.0.1:{admin}/readyz") != 200:
            assert process.poll() is None and time.monotonic() < deadline, "payment never became ready"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        time.sleep(0.5)
        assert fetch_status(f"http://127.0.0.1:{admin}/readyz") == 503, "not draining"
        assert fetch_status(f"http://127.0.0.1:{http}/healthz") == 200, "stopped serving while draining"
        process.wait(timeout=grace)
        assert 2 <= time.monotonic() - stopped < grace
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def fetch_status(url: str) -> int | None:
    try:
        return fetch(url)[0]
    except OSError:
        return None


def test_the_drain_values_are_schema_checked():
    for values in ({"drainSeconds": -1}, {"drainSeconds": "5"}, {"shutdownTimeoutSeconds": 1.5}):
        assert "schema" in render_fails(values), values


# ---- Redis without loss ---------------------------------------------------------------------


@ci
def test_every_redis_server_appends_every_write_to_its_volume(ci_id):
    rendered = rendered_ci(ci_id)
    for component in SERVERS:
        store = component.removesuffix("-replica")
        if rendered.external(store) or component not in {pod_labels(w)[COMPONENT] for w in rendered.workloads()}:
            continue
        w = rendered.workload_of(component)
        (redis,) = containers(w)
        args = redis["args"]
        assert args[args.index("--appendonly") + 1] == "yes", component
        assert args[args.index("--appendfsync") + 1] == "everysec", component
        # The working directory of the image, where the AOF goes, is the chart's volume.
        (mount,) = redis["volumeMounts"]
        assert mount["mountPath"] == "/data"
        volume = next(v for v in pod_spec(w)["volumes"] if v["name"] == mount["name"])
        assert "emptyDir" in volume or "persistentVolumeClaim" in volume
        # One pod at a time on the volume.
        assert w["spec"]["strategy"] == {"type": "Recreate"}


def test_persistence_is_explained_where_it_is_switched():
    values = (CHART / "values.yaml").read_text()
    section = values.split("cartData: &redis", 1)[1].split("\nsessionData:", 1)[0]
    assert "survives a container's restart" in section and "not the pod's deletion" in section
    assert "copies the empty data set" in section
    assert "at most the last second" in values.split("cartData: &redis", 1)[0].rsplit("# --", 1)[1]


def readiness_command(rendered: Rendered, component: str) -> list[str]:
    return containers(rendered.workload_of(component))[0]["readinessProbe"]["exec"]["command"]


@ci
def test_a_replica_is_ready_only_after_its_first_sync_and_a_primary_when_loaded(ci_id):
    rendered = rendered_ci(ci_id)
    for store in REDIS_STORES:
        if rendered.external(store) or f"{RELEASE}-{store}-replica" not in rendered.names("Deployment"):
            continue
        command = readiness_command(rendered, f"{store}-replica")
        assert command[:2] == ["sh", "-c"] and command[3:] == ["replica-ready", "6379", "/data/replica-synced"]
        # The marker beside the data, on the data's volume: they go together.
        assert command[-1].startswith("/data/")
        assert readiness_command(rendered, store) == ["sh", "-c", '[ "$(redis-cli -p 6379 ping)" = PONG ]']


class RedisServer:
    """redis-server run with the chart's arguments for one server, on a loopback port, in a
    folder standing in for its /data volume."""

    def __init__(self, args: list[str], data: Path, port: int, primary_port: int | None = None):
        args = list(args)
        assert args[0] == "redis-server"
        args[args.index("--port") + 1] = str(port)
        if "--replicaof" in args:
            i = args.index("--replicaof")
            args[i + 1:i + 3] = ["127.0.0.1", str(primary_port)]
        data.mkdir(exist_ok=True)
        self.port, self.data = port, data
        # The test's own: loopback, its folder, and a full sync without the 5 s wait for
        # more replicas (the chart keeps Redis' default).
        self.command = [shutil.which("redis-server"), *args[1:], "--bind", "127.0.0.1", "--dir", str(data),
                        "--repl-diskless-sync-delay", "0"]
        self.process = None

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                assert self.process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def cli(self, *args: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10).stdout


def probe(command: list[str], port: int, marker: Path) -> bool:
    """The rendered readiness probe, run here: the port and marker moved to the test's."""
    done = subprocess.run([*command[:4], str(port), str(marker)], capture_output=True, timeout=10)
    return done.returncode == 0


def eventually(what, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not what():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def redis_pair(tmp_path):
    """The chart's cart-data primary and replica (not started), on free loopback ports."""
    assert shutil.which("redis-server") and shutil.which("redis-cli"), "redis-server and redis-cli are needed"
    rendered = rendered_ci("default")
    primary_port, replica_port = free_port(), free_port()
    primary = RedisServer(containers(rendered.workload_of("cart-data"))[0]["args"], tmp_path / "primary", primary_port)
    replica = RedisServer(containers(rendered.workload_of("cart-data-replica"))[0]["args"], tmp_path / "replica",
                          replica_port, primary_port)
    try:
        yield rendered, primary, replica
    finally:
        replica.kill()
        primary.kill()


def test_the_replica_probe_passes_after_the_first_sync_and_while_the_primary_is_down(redis_pair):
    rendered, primary, replica = redis_pair
    command = readiness_command(rendered, "cart-data-replica")
    marker = replica.data / "replica-synced"
    # A replica whose primary is not there yet holds nothing: not ready.
    replica.start()
    assert not probe(command, replica.port, marker)
    assert not marker.exists()
    # Its first full sync done: ready, and the marker remembers it.
    primary.start()
    assert primary.cli("HSET", "cart:s1", "p1", "3").strip() == "1"
    assert eventually(lambda: probe(command, replica.port, marker)), replica.cli("info", "replication")
    assert marker.exists() and replica.cli("HGET", "cart:s1", "p1").strip() == "3"
    # The primary dies: the replica is what the shop reads now, so it stays ready.
    primary.kill()
    assert eventually(lambda: "master_link_status:down" in replica.cli("info", "replication"))
    assert all(probe(command, replica.port, marker) for _ in range(3))
    assert replica.cli("HGET", "cart:s1", "p1").strip() == "3"
    # A replica whose data went with its volume (marker gone) is not ready without a primary.
    marker.unlink()
    assert not probe(command, replica.port, marker)
    # Nor is a marker enough when Redis itself does not answer.
    marker.touch()
    replica.kill()
    assert not probe(command, replica.port, marker)


def test_the_primary_probe_needs_an_answering_redis(redis_pair):
    rendered, primary, _ = redis_pair
    command = readiness_command(rendered, "cart-data")
    local = [*command[:2], command[2].replace("-p 6379", f"-p {primary.port}")]
    assert subprocess.run(local, timeout=10).returncode != 0
    primary.start()
    assert subprocess.run(local, timeout=10).returncode == 0


def test_a_restarted_primary_keeps_its_writes_so_its_replica_copies_no_empty_set(redis_pair):
    # The AOF on the pod's volume (an emptyDir outlives a crashed container): what was
    # acknowledged a second ago is back after a crash, and the replica resyncs to it.
    rendered, primary, replica = redis_pair
    primary.start()
    replica.start()
    primary.cli("HSET", "cart:s2", "p2", "5")
    assert eventually(lambda: replica.cli("HGET", "cart:s2", "p2").strip() == "5")
    time.sleep(1.5)  # appendfsync everysec
    primary.kill()
    primary.start()
    assert eventually(lambda: primary.cli("HGET", "cart:s2", "p2").strip() == "5"), "the primary lost its AOF"
    assert eventually(lambda: "master_link_status:up" in replica.cli("info", "replication"))
    assert replica.cli("HGET", "cart:s2", "p2").strip() == "5"


# ---- migrate, once per install and upgrade -----------------------------------------------------


@ci
def test_migrate_runs_once_per_install_and_upgrade(ci_id):
    rendered = rendered_ci(ci_id)
    job = migrate_job(rendered)
    annotations = job["metadata"]["annotations"]
    # After the release's objects exist (the in-chart PostgreSQL, the Job's NetworkPolicy).
    assert annotations["helm.sh/hook"] == "post-install,post-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    # Before the faults Job: the catalog first.
    assert int(annotations["helm.sh/hook-weight"]) < int(faults_job(rendered)["metadata"]["annotations"]["helm.sh/hook-weight"])
    spec = job["spec"]
    # It waits for PostgreSQL by retrying, within Helm's default --timeout (5m).
    assert 3 <= spec["backoffLimit"] <= 10
    assert 60 <= spec["activeDeadlineSeconds"] <= 300
    assert 0 < spec["ttlSecondsAfterFinished"] <= 86400
    assert pod_spec(job)["restartPolicy"] == "Never"
    # No shell to wait with: the shop's own image, no init container.
    assert "initContainers" not in pod_spec(job)
    (container,) = containers(job)
    assert container["args"] == ["migrate"] and "command" not in container
    assert container["resources"]["requests"] and container["resources"]["limits"]
    # No product pod migrates any more.
    assert "initContainers" not in pod_spec(rendered.workload_of("product"))


def test_migrate_waits_and_stays_within_what_the_values_say():
    job = migrate_job(Rendered({"migrate": {"backoffLimit": 8, "activeDeadlineSeconds": 600}}))
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"]) == (8, 600)
    assert "schema" in render_fails({"migrate": {"backoffLimit": -1}})


def test_generated_products_are_asked_of_the_migrate_job_with_the_time_to_load_them():
    plain = migrate_job(Rendered())
    few = migrate_job(Rendered({"productData": {"generate": 500}}))
    million = migrate_job(Rendered({"productData": {"generate": 1000000}}))

    assert containers(plain)[0]["args"] == ["migrate"], "no --generate when 0"
    assert containers(few)[0]["args"] == ["migrate", "--generate", "500"]
    assert containers(million)[0]["args"] == ["migrate", "--generate", "1000000"]
    assert "--generate <N>" in help_text("migrate") and "ECOMMERCE_GENERATE" in help_text("migrate")
    deadline = plain["spec"]["activeDeadlineSeconds"]
    assert few["spec"]["activeDeadlineSeconds"] == deadline
    # A million loads in about 100 s on two cores; a Job's PostgreSQL may have far less.
    assert million["spec"]["activeDeadlineSeconds"] == deadline + 1000
    for bad in (-1, 10000000, "many", 1.5):
        assert "schema" in render_fails({"productData": {"generate": bad}}), bad


# ---- secrets of the user's own ----------------------------------------------------------------


def secret_ref(container: dict, variable: str) -> dict:
    return env_vars(container)[variable]["valueFrom"]["secretKeyRef"]


def test_existing_secrets_replace_every_secret_of_the_charts():
    rendered = rendered_ci("existing-secrets")
    # The chart makes no Secret at all: all of them are the user's.
    assert rendered.names("Secret") == set()
    web = rendered.role_container("web-gateway")
    assert secret_ref(web, "ECOMMERCE_SESSION_SECRET") == {"name": "shop-credentials", "key": "session-secret"}
    for role in ROLES:
        container = rendered.role_container(role)
        assert secret_ref(container, "ECOMMERCE_ADMIN_TOKEN") == {"name": "shop-credentials", "key": "admin-token"}
        assert secret_ref(container, "OTEL_EXPORTER_OTLP_HEADERS") == {"name": "shop-otel", "key": "headers"}
    product = rendered.role_container("product")
    assert secret_ref(product, "PRODUCT_DATA_PASSWORD") == {"name": "shop-credentials", "key": "postgres-password"}
    postgres = containers(rendered.workload_of("product-data"))[0]
    assert secret_ref(postgres, "POSTGRES_PASSWORD") == {"name": "shop-credentials", "key": "postgres-password"}
    # The password reaches the URL through Kubernetes' expansion, and nowhere in the manifests.
    password = CLUSTER_SECRETS["shop-credentials"]["postgres-password"]
    assert urlsplit(rendered.role_env("product")["ECOMMERCE_PRODUCT_DATA"]).password == password
    assert rendered.env(containers(migrate_job(rendered))[0])["ECOMMERCE_PRODUCT_DATA"] == rendered.role_env("product")["ECOMMERCE_PRODUCT_DATA"]
    grafana = containers(rendered.workload_of("grafana"))[0]
    assert {"name": "shop-grafana", "key": "password"} in [
        v["valueFrom"]["secretKeyRef"] for v in grafana["env"] if "secretKeyRef" in v.get("valueFrom", {})
    ]


@pytest.mark.parametrize("values,secret", [
    ({"sessionExistingSecret": {"name": "mine", "key": "k"}}, f"{RELEASE}-session"),
    ({"productData": {"existingSecret": {"name": "mine", "key": "k"}}}, f"{RELEASE}-product-data"),
    ({"otel": {"headers": "x-key=1", "existingSecret": {"name": "mine", "key": "k"}}}, f"{RELEASE}-otel"),
    ({"admin": {"existingSecret": {"name": "mine", "key": "k"}}}, f"{RELEASE}-admin"),
    ({"observability": {"grafana": {"admin": {"existingSecret": {"name": "mine", "key": "k"}}}}}, f"{RELEASE}-grafana"),
], ids=["session", "product-data", "otel-headers", "admin", "grafana"])
def test_each_existing_secret_replaces_the_charts_own(values, secret):
    # The chart's own, without the user's (headers given, so that the otel one is made too).
    assert secret in Rendered({"otel": {"headers": "x-key=1"}}).names("Secret")
    rendered = Rendered(values)
    assert secret not in rendered.names("Secret")
    refs = [
        v["valueFrom"]["secretKeyRef"] for w in rendered.workloads() for c in containers(w, init=True)
        for v in c.get("env", []) if "secretKeyRef" in v.get("valueFrom", {})
    ]
    assert {"name": "mine", "key": "k"} in refs
    assert not any(r["name"] == secret for r in refs)


def test_renders_with_existing_secrets_are_the_same_every_time():
    # Nothing random where the user's Secrets hold the values: a GitOps diff stays quiet.
    assert render_text(EXISTING) == render_text(EXISTING)
    both = merged(EXTERNAL, EXISTING)
    assert both["productData"]["external"]["enabled"] and both["productData"]["existingSecret"]["name"]
    assert render_text(both) == render_text(both)
    # The control: without them the chart generates (and a cluster's lookup keeps) its own.
    assert render_text({}) != render_text({})


def test_generated_secrets_are_kept_across_upgrades():
    # Offline rendering cannot run `lookup`: check each generated Secret goes through the
    # helper that reads the live one before it makes a new value.
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    observability = (CHART / "templates" / "_observability.tpl").read_text()
    for name in ("sessionSecret", "productDataPassword", "adminToken"):
        assert f'define "ecommerce.{name}" -}}}}\n{{{{- include "ecommerce.keptSecret"' in helpers, name
    assert 'define "ecommerce.grafanaPassword" -}}\n{{- include "ecommerce.keptSecret"' in observability
    secrets = (CHART / "templates" / "secrets.yaml").read_text()
    assert "randAlphaNum" not in secrets and "randAlphaNum" not in observability


# ---- external stores ---------------------------------------------------------------------------


def test_external_stores_replace_the_charts_own():
    rendered = rendered_ci("external-stores")
    components = {pod_labels(w)[COMPONENT] for w in rendered.workloads()}
    in_chart = {"cart-data", "cart-data-replica", "session-data", "session-data-replica", "product-data"}
    assert not components & in_chart
    for obj in rendered.objects:
        labels = obj["metadata"].get("labels", {})
        assert labels.get(COMPONENT) not in in_chart, f"{obj['kind']} {obj['metadata']['name']}"
    assert not rendered.of_kind("PersistentVolumeClaim") and not rendered.of_kind("StatefulSet")
    assert f"{RELEASE}-product-data" not in rendered.names("Secret")


def test_external_stores_are_wired_as_the_values_say():
    rendered = rendered_ci("external-stores")
    cart = rendered.role_env("cart")
    # TLS and the password, expanded by Kubernetes from the user's Secret.
    assert cart["ECOMMERCE_CART_DATA"] == "rediss://:cart-data-password@carts.redis.example.com:6381/0"
    assert cart["ECOMMERCE_CART_DATA_REPLICA"] == "rediss://:cart-data-password@carts-ro.redis.example.com:6381/0"
    assert secret_ref(rendered.role_container("cart"), "CART_DATA_PASSWORD") == {
        "name": "shop-cart-data-credentials", "key": "password"}
    # session-data's URLs whole from a Secret, the fault state's too.
    urls = CLUSTER_SECRETS["shop-session-data-urls"]
    web = rendered.role_env("web-gateway")
    assert (web["ECOMMERCE_SESSION_DATA"], web["ECOMMERCE_SESSION_DATA_REPLICA"]) == (urls["url"], urls["replica-url"])
    for role in ROLES:
        assert rendered.role_env(role)["ECOMMERCE_FAULT_STATE"] == urls["fault-state-url"], role
    assert rendered.env(containers(faults_job(rendered))[0])["ECOMMERCE_FAULT_STATE"] == urls["fault-state-url"]
    # PostgreSQL with full verification, for the role and the migrate Job alike.
    product = rendered.role_env("product")["ECOMMERCE_PRODUCT_DATA"]
    assert product == "postgres://shop:product-data-password@products.db.example.com:5432/products?sslmode=verify-full"
    assert rendered.env(containers(migrate_job(rendered))[0])["ECOMMERCE_PRODUCT_DATA"] == product
    # No role gets a store it does not use.
    for role in ROLES:
        env = rendered.role_env(role)
        assert ("CART_DATA_PASSWORD" in env) == (role == "cart")
        assert ("PRODUCT_DATA_PASSWORD" in env) == (role == "product")


def test_an_external_stores_ca_is_mounted_where_ecommerce_ca_file_says():
    rendered = rendered_ci("external-stores")
    pods = [*role_pods(rendered), migrate_job(rendered), faults_job(rendered)]
    for w in pods:
        (container,) = containers(w)
        path = rendered.env(container)["ECOMMERCE_CA_FILE"]
        (mount,) = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
        assert mount["readOnly"] is True
        volume = next(v for v in pod_spec(w)["volumes"] if v["name"] == mount["name"])
        (item,) = volume["configMap"]["items"]
        assert volume["configMap"]["name"] == "shop-store-ca" and item["key"] in CLUSTER_CONFIGMAPS["shop-store-ca"]
        assert path == f"{mount['mountPath']}/{item['path']}", w["metadata"]["name"]
    # The other workloads trust only the system's roots.
    for w in rendered.workloads():
        if w not in pods:
            assert not any("ECOMMERCE_CA_FILE" in env_vars(c) for c in containers(w, init=True)), w["metadata"]["name"]


def test_a_ca_from_a_secret_reaches_only_the_stores_clients():
    rendered = Rendered({"productData": {"external": {
        "enabled": True, "url": "postgresql://shop@db.internal:6432/products?sslmode=verify-ca",
        "ca": {"secret": "db-ca", "key": "root.pem"}}}})
    for w in (rendered.workload_of("product"), migrate_job(rendered)):
        (volume,) = pod_spec(w)["volumes"]
        assert volume["secret"] == {"secretName": "db-ca", "items": [{"key": "root.pem", "path": "ca.crt"}]}
        assert rendered.env(containers(w)[0])["ECOMMERCE_PRODUCT_DATA"].endswith("sslmode=verify-ca")
    for role in ROLES:
        assert ("ECOMMERCE_CA_FILE" in rendered.role_env(role)) == (role == "product"), role


@pytest.mark.parametrize("values,message", [
    ({"cartData": {"external": {"enabled": True}}}, "cartData.external: set url"),
    ({"sessionData": {"external": {"enabled": True, "urlSecret": {"name": "s", "key": "url"}}}}, "faultStateKey"),
    ({"cartData": {"external": {"enabled": True, "url": "redis://a:6379", "ca": {"secret": "a", "configMap": "b"}}}},
     "not both"),
    ({"cartData": {"external": {"enabled": True, "url": "rediss://a:6380", "ca": {"secret": "a-ca"}}},
      "sessionData": {"external": {"enabled": True, "url": "rediss://b:6380", "ca": {"secret": "b-ca"}}}},
     "one CA file"),
], ids=["no-url", "fault-state-url-unknown", "two-ca-sources", "two-cas-for-cart"])
def test_an_external_store_that_cannot_work_is_refused(values, message):
    error = render_fails(values)
    assert message in error, error


def test_the_fault_state_is_database_1_of_an_external_session_data():
    rendered = Rendered({"sessionData": {"external": {
        "enabled": True, "url": "rediss://:$(SESSION_DATA_PASSWORD)@s.example.com:6380/0?protocol=resp3",
        "existingSecret": {"name": "shop-otel", "key": "api-key"}}}})
    for role in ROLES:
        assert rendered.role_env(role)["ECOMMERCE_FAULT_STATE"] == "rediss://:vendor-key@s.example.com:6380/1?protocol=resp3"
    own = Rendered({"sessionData": {"external": {"enabled": True, "url": "redis://s:6379", "faultStateUrl": "redis://f:6379/4"}}})
    assert own.role_env("payment")["ECOMMERCE_FAULT_STATE"] == "redis://f:6379/4"


def test_network_policies_let_the_clients_reach_the_external_stores_and_no_one_else():
    rendered = rendered_ci("external-stores")
    policies = NetworkPolicies(rendered.of_kind("NetworkPolicy"))
    points = endpoints_of(rendered)
    carts, elsewhere = Endpoint("carts", ip="10.20.3.4"), Endpoint("elsewhere", ip="10.99.0.1")
    internet = Endpoint("internet", ip="203.0.113.20")
    for name, point in points.items():
        if name == "outside":
            continue
        # cart-data: from cart alone, on 6381, in 10.20.0.0/16 alone.
        assert policies.allows(point, carts, 6381) == (name == "cart"), name
        assert not policies.allows(point, elsewhere, 6381), name
        # session-data (port 6380, any address): every role and the faults Job.
        assert policies.allows(point, internet, 6380) == (name in (*ROLES, "faults")), name
        # product-data (5432, any address): product and the migrate Job.
        assert policies.allows(point, internet, 5432) == (name in ("product", "migrate")), name
    # No policy of the chart's own selects a store pod, there being none.
    assert not {p["metadata"]["name"] for p in rendered.of_kind("NetworkPolicy")} & {
        f"{RELEASE}-cart-data", f"{RELEASE}-session-data", f"{RELEASE}-product-data"}


@pytest.mark.parametrize("values", [
    {"cartData": {"external": {"enabled": True, "url": "http://redis:6379"}}},
    {"productData": {"external": {"enabled": True, "url": "mysql://db/products"}}},
    {"cartData": {"external": {"enabled": True, "url": "redis://r", "cidrs": ["10.0.0.0"]}}},
    {"cartData": {"external": {"enabled": True, "url": "redis://r", "ca": {"file": "/ca.pem"}}}},
    {"sessionExistingSecret": {"name": "Not_A_Name", "key": "k"}},
    {"otel": {"existingSecret": {"name": "ops", "key": "a key"}}},
], ids=lambda v: json.dumps(v))
def test_the_schema_rejects_bad_store_and_secret_values(values):
    assert "schema" in render_fails(values)


# ---- the platform's settings ------------------------------------------------------------------


def test_openshift_assigns_users_and_groups_everywhere():
    rendered = rendered_ci("openshift")
    for w in rendered.workloads():
        spec = pod_spec(w)
        assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(spec["securityContext"]), w["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for c in containers(w, init=True):
            assert not {"runAsUser", "runAsGroup"} & set(c["securityContext"]), f"{w['metadata']['name']}/{c['name']}"
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # A role's own applies over the global ones, to its pods alone.
    cart = pod_spec(rendered.workload_of("cart"))["securityContext"]
    assert cart["supplementalGroups"] == [5000]
    assert "supplementalGroups" not in pod_spec(rendered.workload_of("payment"))["securityContext"]


@pytest.mark.parametrize("values", [
    {"podSecurityContext": {"runAsUser": 1000770000, "fsGroup": 1000770000}},
    {"containerSecurityContext": {"runAsUser": None, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}},
    {"roles": {"content": {"podSecurityContext": {"fsGroup": None, "seccompProfile": {"type": "Localhost", "localhostProfile": "shop.json"}}}}},
], ids=["fixed-ids", "capability", "role-localhost-seccomp"])
def test_security_context_overrides_pass_the_schema_and_strict_validation(values):
    from kubernetes_validate import utils as kube_validate
    from test_chart import KUBE_VERSIONS

    rendered = Rendered(values)
    for w in rendered.workloads():
        for version in KUBE_VERSIONS:
            kube_validate.validate(w, version, strict=True)
    if "podSecurityContext" in values:
        assert pod_spec(rendered.workload_of("cart"))["securityContext"]["runAsUser"] == 1000770000
    if "roles" in values:
        content = pod_spec(rendered.workload_of("content"))["securityContext"]
        assert "fsGroup" not in content and content["seccompProfile"]["type"] == "Localhost"
        assert pod_spec(rendered.workload_of("cart"))["securityContext"]["fsGroup"] == 65532


@pytest.mark.parametrize("values", [
    {"podSecurityContext": {"runAsUsr": 1}},
    {"containerSecurityContext": {"privileged": "no"}},
    {"podSecurityContext": {"fsGroup": -1}},
    {"roles": {"cart": {"containerSecurityContext": {"readOnly": True}}}},
    {"roles": {"cart": {"podLabels": {"tier": 1}}}},
    {"roles": {"cart": {"priorityClassName": "Not A Class"}}},
    {"topologySpreadConstraints": [{"maxSkew": 1}]},
    {"serviceAccount": {"create": "yes"}},
], ids=lambda v: json.dumps(v))
def test_the_schema_rejects_bad_platform_values(values):
    assert "schema" in render_fails(values)


def test_the_shops_pods_run_as_its_service_account_without_a_token():
    rendered = rendered_ci("openshift")
    account = rendered.get("ServiceAccount", "shop-workloads")
    assert account["automountServiceAccountToken"] is False
    assert account["metadata"]["annotations"] == {"example.com/scc": "restricted-v2"}
    discovery = {s["name"] for b in rendered.of_kind("RoleBinding") for s in b["subjects"]}
    for w in rendered.workloads():
        spec = pod_spec(w)
        if spec.get("serviceAccountName") in discovery:
            continue  # Prometheus' own, which asks the API (test_observability)
        assert spec["serviceAccountName"] == "shop-workloads", w["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, w["metadata"]["name"]
    default = rendered_ci("default")
    assert f"{RELEASE}" in default.names("ServiceAccount")
    assert pod_spec(default.workload_of("cart"))["serviceAccountName"] == RELEASE
    # Not made by the chart: the named one, else the namespace's default.
    for account_values, name in (({"create": False, "name": "ops"}, "ops"), ({"create": False}, "default")):
        other = Rendered({"serviceAccount": account_values})
        assert RELEASE not in other.names("ServiceAccount")
        assert pod_spec(other.workload_of("cart"))["serviceAccountName"] == name


def test_pod_labels_and_annotations_add_to_the_charts_and_never_replace_them():
    rendered = rendered_ci("openshift")
    web = rendered.workload_of("web-gateway")
    assert pod_labels(web)["team"] == "shop" and pod_labels(web)["tier"] == "edge"
    assert pod_annotations(web)["example.com/owner"] == "storefront"
    assert pod_annotations(web)["prometheus.io/scrape"] == "true"
    assert "tier" not in pod_labels(rendered.workload_of("cart")) and pod_labels(rendered.workload_of("cart"))["team"] == "shop"
    clash = Rendered({"podLabels": {COMPONENT: "evil"}, "roles": {"cart": {"podLabels": {"app.kubernetes.io/name": "evil"}}}})
    for w in clash.workloads():
        assert pod_labels(w)[COMPONENT] != "evil" and pod_labels(w)["app.kubernetes.io/name"] == "ecommerce"
    # A role's own annotation wins over the global one and the chart's scrape annotations.
    own = Rendered({"podAnnotations": {"a": "global"}, "roles": {"cart": {"podAnnotations": {"a": "cart", "prometheus.io/scrape": "false"}}}})
    assert pod_annotations(own.workload_of("cart"))["a"] == "cart"
    assert pod_annotations(own.workload_of("cart"))["prometheus.io/scrape"] == "false"
    assert pod_annotations(own.workload_of("payment"))["a"] == "global"


def test_prometheus_annotations_only_on_the_pods_that_serve_metrics():
    for ci_id in ("default", "openshift", "external-stores"):
        rendered = rendered_ci(ci_id)
        for w in rendered.workloads():
            scraped = "prometheus.io/scrape" in pod_annotations(w)
            assert scraped == (pod_labels(w)[COMPONENT] in ROLES), (ci_id, w["metadata"]["name"])


def test_pods_spread_and_take_priority_as_the_values_say():
    rendered = rendered_ci("openshift")
    for w in rendered.workloads():
        component = pod_labels(w)[COMPONENT]
        spec = pod_spec(w)
        (constraint,) = spec["topologySpreadConstraints"]
        # Each spreads its own component's pods.
        assert constraint["labelSelector"]["matchLabels"][COMPONENT] == component
        assert constraint["topologyKey"] == ("kubernetes.io/hostname" if component == "web-gateway" else "topology.kubernetes.io/zone")
        assert spec["priorityClassName"] == ("shop-critical" if component == "web-gateway" else "shop-normal")
    default = rendered_ci("default")
    for w in default.workloads():
        assert "topologySpreadConstraints" not in pod_spec(w) and "priorityClassName" not in pod_spec(w)


def test_each_roles_resources_are_its_own():
    rendered = rendered_ci("openshift")
    cart = rendered.role_container("cart")["resources"]
    assert cart == {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}
    for role in ROLES:
        if role != "cart":
            assert rendered.role_container(role)["resources"] == rendered_ci("default").role_container(role)["resources"], role
