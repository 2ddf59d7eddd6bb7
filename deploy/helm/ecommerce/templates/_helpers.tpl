{{/* Names, labels and the pieces every workload of the chart shares. */}}

{{- define "ecommerce.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every object: the release name, or fullnameOverride. Cut to 38 characters so
that every name built on it fits: Services ("-product-data-headless", 63 at most) and the
product-data StatefulSet, whose name plus a revision hash must stay a valid label (52).
*/}}
{{- define "ecommerce.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 38 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of one component's objects: include "ecommerce.component" (list $ "cart") */}}
{{- define "ecommerce.component" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "ecommerce.fullname" $root) (index . 1) -}}
{{- end -}}

{{- define "ecommerce.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* What selects the pods of one component: include "ecommerce.selectorLabels" (list $ "cart") */}}
{{- define "ecommerce.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "ecommerce.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Every label of one component's objects: include "ecommerce.labels" (list $ "cart") */}}
{{- define "ecommerce.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "ecommerce.chart" $root }}
{{ include "ecommerce.selectorLabels" . }}
app.kubernetes.io/part-of: {{ include "ecommerce.name" $root }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
{{- end -}}

{{/* What selects every pod of the release (the NetworkPolicies' default deny). */}}
{{- define "ecommerce.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "ecommerce.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ecommerce.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* "http://<service>:80": how the roles reach one another. */}}
{{- define "ecommerce.roleUrl" -}}
{{- $root := index . 0 -}}
{{- printf "http://%s:80" (include "ecommerce.component" (list $root (index . 1))) -}}
{{- end -}}

{{/* "redis://<service>:6379" of a store: include "ecommerce.redisUrl" (list $ "cart-data") */}}
{{- define "ecommerce.redisUrl" -}}
{{- $root := index . 0 -}}
{{- printf "redis://%s:6379" (include "ecommerce.component" (list $root (index . 1))) -}}
{{- end -}}

{{/* product-data's URL with a password: include "ecommerce.productDataUrl" (list $ <password>) */}}
{{- define "ecommerce.productDataUrl" -}}
{{- $root := index . 0 -}}
{{- printf "postgres://%s:%s@%s:5432/products" $root.Values.productData.username (index . 1) (include "ecommerce.component" (list $root "product-data")) -}}
{{- end -}}

{{/*
A generated secret that outlives upgrades: the value given, else the one already in the
cluster (lookup), else a new random one. Include it once per render (in the Secret itself):
pods read it from there. include "ecommerce.keptSecret" (list $ <secret name> <key> <given
value> <length>)
*/}}
{{- define "ecommerce.keptSecret" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $key := index . 2 -}}
{{- $given := index . 3 -}}
{{- if $given -}}
{{- $given -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace $name -}}
{{- if and $existing $existing.data (hasKey $existing.data $key) -}}
{{- index $existing.data $key | b64dec -}}
{{- else -}}
{{- randAlphaNum (index . 4) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ecommerce.sessionSecret" -}}
{{- include "ecommerce.keptSecret" (list . (include "ecommerce.component" (list . "session")) "session-secret" .Values.sessionSecret 48) -}}
{{- end -}}

{{- define "ecommerce.productDataPassword" -}}
{{- include "ecommerce.keptSecret" (list . (include "ecommerce.component" (list . "product-data")) "password" .Values.productData.password 32) -}}
{{- end -}}

{{/*
Changes whenever a value that pods read through a Secret changes, so they roll. Generated
secrets are left out: they never change once made.
*/}}
{{- define "ecommerce.configChecksum" -}}
{{- dict "sessionSecret" .Values.sessionSecret "productData" .Values.productData.password "username" .Values.productData.username "otel" .Values.otel "admin" .Values.admin | toJson | sha256sum -}}
{{- end -}}

{{/*
The Secret every role reads the admin token from (key admin-token): the one the values
name, else the chart's own when a token is given, else nothing (run-time fault switching
off).
*/}}
{{- define "ecommerce.adminSecret" -}}
{{- if .Values.admin.existingSecret -}}
{{- .Values.admin.existingSecret -}}
{{- else if .Values.admin.token -}}
{{- include "ecommerce.component" (list . "admin") -}}
{{- end -}}
{{- end -}}

{{/*
OTEL_RESOURCE_ATTRIBUTES of every role. The OpenTelemetry list format is
key=value,... with percent-encoded values: urlquery encodes all but letters, digits and
-._~ (so a "," or "$(" in the environment cannot break the list or be expanded by
Kubernetes), and writes a space as "+", which the format does not decode. $(POD_NAME) is
left for Kubernetes to expand from the POD_NAME variable declared before this one.
*/}}
{{- define "ecommerce.otelResourceAttributes" -}}
{{- $environment := .Values.otel.environment | default .Release.Namespace -}}
{{- $attributes := list
  (printf "deployment.environment.name=%s" ($environment | urlquery | replace "+" "%20"))
  (printf "k8s.namespace.name=%s" (.Release.Namespace | urlquery))
  "k8s.pod.name=$(POD_NAME)" -}}
{{- join "," $attributes -}}
{{- end -}}

{{/* The fault scenarios of one role, "NAME[=VALUE]" each: include "ecommerce.roleFaults" (list $ "cart") */}}
{{- define "ecommerce.roleFaults" -}}
{{- $root := index . 0 -}}
{{- $role := index . 1 -}}
{{- $f := $root.Values.faults -}}
{{- $out := list -}}
{{- if and $f.basicBug (eq $role "product") -}}{{- $out = append $out "basic-bug" -}}{{- end -}}
{{- if and $f.bindLocalhost (eq $role "api-gateway") -}}{{- $out = append $out "bind-localhost" -}}{{- end -}}
{{- if and $f.paymentFailure (eq $role "payment") -}}{{- $out = append $out (printf "payment-failure=%v" $f.paymentFailure) -}}{{- end -}}
{{- if and $f.paymentLatency (eq $role "payment") -}}{{- $out = append $out (printf "payment-latency=%v" (int64 $f.paymentLatency)) -}}{{- end -}}
{{- if and $f.cartDataOutage (eq $role "cart") -}}{{- $out = append $out "cart-data-outage" -}}{{- end -}}
{{- if and $f.memoryLeak (eq $role $f.memoryLeak) -}}{{- $out = append $out (printf "memory-leak=%s" $role) -}}{{- end -}}
{{- $out = concat $out ((index $root.Values.roles $role).faults | default list) -}}
{{- join "," (uniq $out) -}}
{{- end -}}

{{/* securityContext of a pod whose processes run as (list <uid> <gid>). */}}
{{- define "ecommerce.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ index . 0 }}
runAsGroup: {{ index . 1 }}
fsGroup: {{ index . 1 }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* securityContext of every container of the chart, running as (list <uid> <gid>). */}}
{{- define "ecommerce.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ index . 0 }}
runAsGroup: {{ index . 1 }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The scheduling settings every pod shares. */}}
{{- define "ecommerce.podScheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
