#!/usr/bin/env bash
# The whole shop on a local kind cluster, from this working tree, in one command:
#
#   1. checks that docker (with a running daemon), kind, helm and kubectl are here;
#   2. creates the kind cluster $KIND_CLUSTER_NAME (ecommerce), or reuses it;
#   3. builds the image (docker build -t ecommerce:dev .) and loads it into the cluster;
#   4. installs or upgrades the chart as release "shop" in namespace "shop" with that image
#      (image.pullPolicy=Never: the cluster never pulls it), and restarts the shop's roles
#      when the image changed since the last run (the tag stays "dev");
#   5. waits, each wait bounded, until every Deployment and StatefulSet of the release has
#      rolled out, then prints how to reach the shop, and Grafana when the chart runs it.
#
# Run it again after a change: it rebuilds, reloads and upgrades the same release. Every
# kubectl and helm call names the cluster's context (kind-<name>), so no other cluster is
# touched. It needs a machine with Docker: the repository's tests cannot run it (they lint
# it: scripts/test-workflows.sh).
#
# Environment:
#   KIND_CLUSTER_NAME   the kind cluster                          (ecommerce)
#   NAMESPACE           where the shop goes                       (shop)
#   RELEASE             the Helm release                          (shop)
#   IMAGE               the image built and loaded                (ecommerce:dev)
#   HELM_TIMEOUT        helm's own bound (its post-install hook)  (10m)
#   ROLLOUT_TIMEOUT     seconds all rollouts together may take    (600; the first install
#                       also pulls Redis, PostgreSQL, k6 and the observability images)
#   HELM_EXTRA_ARGS     more helm arguments, e.g. "--set observability.enabled=false"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

CLUSTER=${KIND_CLUSTER_NAME:-ecommerce}
NAMESPACE=${NAMESPACE:-shop}
RELEASE=${RELEASE:-shop}
IMAGE=${IMAGE:-ecommerce:dev}
HELM_TIMEOUT=${HELM_TIMEOUT:-10m}
ROLLOUT_TIMEOUT=${ROLLOUT_TIMEOUT:-600}
CHART=deploy/helm/ecommerce
CONTEXT="kind-$CLUSTER"
# The shop's roles: each a Deployment <release>-<role> running the image built here.
ROLES=(web-gateway api-gateway cart checkout content payment product)
STATE_DIR="$ROOT/target/kind-up"

step() { echo "== kind-up: $*"; }
fail() { echo "kind-up: $*" >&2; exit 1; }

[[ $ROLLOUT_TIMEOUT =~ ^[1-9][0-9]*$ ]] || fail "ROLLOUT_TIMEOUT must be a number of seconds, got '$ROLLOUT_TIMEOUT'"
[[ $IMAGE == *:* ]] || fail "IMAGE must be <repository>:<tag>, got '$IMAGE'"
IMAGE_REPOSITORY=${IMAGE%:*}
IMAGE_TAG=${IMAGE##*:}

# ---- 1. the tools ---------------------------------------------------------------------
declare -A WHERE=(
  [docker]="https://docs.docker.com/get-docker/ (Docker Desktop, or Docker Engine on Linux)"
  [kind]="https://kind.sigs.k8s.io/docs/user/quick-start/#installation (or: go install sigs.k8s.io/kind@latest)"
  [helm]="https://helm.sh/docs/intro/install/"
  [kubectl]="https://kubernetes.io/docs/tasks/tools/#kubectl"
)
missing=()
for tool in docker kind helm kubectl; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  {
    echo "kind-up: missing: ${missing[*]}. Install, then run this again:"
    for tool in "${missing[@]}"; do echo "  $tool: ${WHERE[$tool]}"; done
  } >&2
  exit 1
fi
timeout 30 docker info >/dev/null 2>&1 ||
  fail "docker is installed but its daemon does not answer (start Docker; on Linux your user may need the docker group)"
step "docker $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'), $(kind version), helm $(helm version --short), kubectl $(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -n 1)"

# ---- 2. the cluster -------------------------------------------------------------------
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  step "reusing the kind cluster '$CLUSTER'"
else
  step "creating the kind cluster '$CLUSTER' (KIND_CLUSTER_NAME)"
  kind create cluster --name "$CLUSTER" --wait 180s
fi
# kind writes the context into the kubeconfig; a reused cluster may have lost it.
kubectl config get-contexts "$CONTEXT" >/dev/null 2>&1 || kind export kubeconfig --name "$CLUSTER"
timeout 60 kubectl --context "$CONTEXT" get nodes >/dev/null ||
  fail "the cluster '$CLUSTER' does not answer (kubectl --context $CONTEXT get nodes)"

# ---- 3. the image ---------------------------------------------------------------------
step "building $IMAGE (the release build: several minutes the first time)"
docker build -t "$IMAGE" .
image_id=$(docker image inspect --format '{{.Id}}' "$IMAGE")
step "loading $IMAGE into the cluster"
kind load docker-image "$IMAGE" --name "$CLUSTER"

# ---- 4. the release -------------------------------------------------------------------
existed=false
helm --kube-context "$CONTEXT" status "$RELEASE" --namespace "$NAMESPACE" >/dev/null 2>&1 && existed=true
step "helm upgrade --install $RELEASE $CHART (namespace $NAMESPACE, image $IMAGE)"
# shellcheck disable=SC2086 # HELM_EXTRA_ARGS is a list of words by design.
helm --kube-context "$CONTEXT" upgrade --install "$RELEASE" "$CHART" \
  --namespace "$NAMESPACE" --create-namespace \
  --set image.repository="$IMAGE_REPOSITORY" --set image.tag="$IMAGE_TAG" --set image.pullPolicy=Never \
  --timeout "$HELM_TIMEOUT" ${HELM_EXTRA_ARGS:-}

# Same tag, new image: the Deployments do not change, so their pods would keep the old
# one. Restart the roles when the image is not the one this script last deployed here.
mkdir -p "$STATE_DIR"
stamp="$STATE_DIR/$CLUSTER.$NAMESPACE.$RELEASE.image-id"
if $existed && [ "$(cat "$stamp" 2>/dev/null)" != "$image_id" ]; then
  step "the image changed: restarting the roles"
  for role in "${ROLES[@]}"; do
    kubectl --context "$CONTEXT" -n "$NAMESPACE" rollout restart "deployment/$RELEASE-$role"
  done
fi
echo "$image_id" > "$stamp"

# ---- 5. wait, bounded -----------------------------------------------------------------
deadline=$((SECONDS + ROLLOUT_TIMEOUT))
mapfile -t workloads < <(kubectl --context "$CONTEXT" -n "$NAMESPACE" get deployments,statefulsets \
  -l "app.kubernetes.io/instance=$RELEASE" -o name)
[ ${#workloads[@]} -gt 0 ] || fail "the release '$RELEASE' has no Deployment or StatefulSet in namespace $NAMESPACE"
step "waiting for ${#workloads[@]} workloads to roll out (at most ${ROLLOUT_TIMEOUT}s in all)"
for workload in "${workloads[@]}"; do
  left=$((deadline - SECONDS))
  if [ "$left" -le 0 ] || ! kubectl --context "$CONTEXT" -n "$NAMESPACE" rollout status "$workload" --timeout="${left}s"; then
    kubectl --context "$CONTEXT" -n "$NAMESPACE" get pods -l "app.kubernetes.io/instance=$RELEASE" >&2 || true
    fail "$workload did not roll out within ROLLOUT_TIMEOUT (${ROLLOUT_TIMEOUT}s); see: kubectl --context $CONTEXT -n $NAMESPACE describe $workload"
  fi
done

# ---- how to reach it ------------------------------------------------------------------
web="$RELEASE-web-gateway"
step "the shop is up on the kind cluster '$CLUSTER' (kubectl context $CONTEXT)"
echo "  shop:     kubectl --context $CONTEXT -n $NAMESPACE port-forward service/$web 8080:80"
echo "            then open http://127.0.0.1:8080/"
if kubectl --context "$CONTEXT" -n "$NAMESPACE" get service "$RELEASE-grafana" >/dev/null 2>&1; then
  echo "  grafana:  kubectl --context $CONTEXT -n $NAMESPACE port-forward service/$RELEASE-grafana 3000:3000"
  echo "            then open http://127.0.0.1:3000/ (viewing needs no login; to edit, user admin, password:"
  echo "            kubectl --context $CONTEXT -n $NAMESPACE get secret $RELEASE-grafana -o jsonpath='{.data.admin-password}' | base64 -d)"
fi
echo "  faults:   kubectl --context $CONTEXT -n $NAMESPACE get secret $RELEASE-admin -o jsonpath='{.data.admin-token}' | base64 -d"
echo "            is the admin token of http://127.0.0.1:8080/admin/faults"
echo "  remove:   helm --kube-context $CONTEXT -n $NAMESPACE uninstall $RELEASE; or the cluster: kind delete cluster --name $CLUSTER"
