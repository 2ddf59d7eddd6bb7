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

{{/*
The Secret and key the web-gateway reads the session key from, as a JSON list [name, key]:
sessionExistingSecret, else the chart's own <fullname>-session (key session-secret).
*/}}
{{- define "ecommerce.sessionSecretRef" -}}
{{- $own := .Values.sessionExistingSecret -}}
{{- if $own.name -}}
{{- list $own.name ($own.key | default "session-secret") | toJson -}}
{{- else -}}
{{- list (include "ecommerce.component" (list . "session")) "session-secret" | toJson -}}
{{- end -}}
{{- end -}}

{{/*
Where the roles read OTEL_EXPORTER_OTLP_HEADERS, as a JSON list [name, key], or [] for no
headers: otel.existingSecret, else the chart's <fullname>-otel when otel.headers is set.
*/}}
{{- define "ecommerce.otelHeadersSecret" -}}
{{- $own := .Values.otel.existingSecret -}}
{{- if $own.name -}}
{{- list $own.name ($own.key | default "headers") | toJson -}}
{{- else if .Values.otel.headers -}}
{{- list (include "ecommerce.component" (list . "otel")) "headers" | toJson -}}
{{- else -}}
{{- list | toJson -}}
{{- end -}}
{{- end -}}

{{- define "ecommerce.productDataPassword" -}}
{{- include "ecommerce.keptSecret" (list . (include "ecommerce.component" (list . "product-data")) "password" .Values.productData.password 32) -}}
{{- end -}}

{{/*
Changes whenever a value a role's pods read at start only changes, so they roll: values they
read through a Secret, and the faults that decide how a role starts (bind-localhost, the
api-gateway's bind). Generated secrets are left out: they never change once made. The live
faults are not here: they change without a restart (see "ecommerce.faults").
include "ecommerce.configChecksum" (list $ "api-gateway")
*/}}
{{- define "ecommerce.configChecksum" -}}
{{- $root := index . 0 -}}
{{- $v := $root.Values -}}
{{- $startFaults := include "ecommerce.startFaults" (list $root (index . 1)) | fromJsonArray -}}
{{- dict "sessionSecret" $v.sessionSecret "productData" $v.productData.password "otel" $v.otel "admin" $v.admin "startFaults" $startFaults | toJson | sha256sum -}}
{{- end -}}

{{/*
The admin token's Secret and key, as a JSON list [name, key]: the Secret admin.existingSecret
names (a name, or {name, key}; the key defaults to admin-token), else the chart's own,
<fullname>-admin, holding admin.token or a token generated at install and kept across
upgrades.
*/}}
{{- define "ecommerce.adminSecret" -}}
{{- $own := .Values.admin.existingSecret -}}
{{- if kindIs "string" $own -}}
{{- $own = dict "name" $own -}}
{{- end -}}
{{- if $own.name -}}
{{- list $own.name ($own.key | default "admin-token") | toJson -}}
{{- else -}}
{{- list (include "ecommerce.component" (list . "admin")) "admin-token" | toJson -}}
{{- end -}}
{{- end -}}

{{/* Whether the chart makes the admin token's Secret (no admin.existingSecret). */}}
{{- define "ecommerce.ownAdminSecret" -}}
{{- $own := .Values.admin.existingSecret -}}
{{- if not (kindIs "string" $own) }}{{ $own = $own.name }}{{ end -}}
{{- if not $own }}true{{ end -}}
{{- end -}}

{{- define "ecommerce.adminToken" -}}
{{- include "ecommerce.keptSecret" (list . (include "ecommerce.component" (list . "admin")) "admin-token" .Values.admin.token 32) -}}
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

{{/*
What the values ask of the fault scenarios, as JSON:
  live          the shop's live fault list, "NAME[=VALUE]" each: the faults: section and
                every roles.<role>.faults list, folded into one (each fault acts on the
                role it concerns, or names it: memory-leak=<role>), bind-localhost left out
  bindLocalhost whether the api-gateway starts with --fault bind-localhost (it decides a
                bind, so it takes a restart, not a live switch)
  trafficLevel  the synthetics' live traffic level: synthetics.trafficSpikeLevel while
                faults.trafficSpike is on, else 1
The live state holds one value per fault: the same fault twice with different values fails.
*/}}
{{- define "ecommerce.faults" -}}
{{- $f := .Values.faults -}}
{{- $all := list -}}
{{- if $f.basicBug }}{{ $all = append $all "basic-bug" }}{{ end -}}
{{- if $f.bindLocalhost }}{{ $all = append $all "bind-localhost" }}{{ end -}}
{{- if $f.paymentFailure }}{{ $all = append $all (printf "payment-failure=%v" $f.paymentFailure) }}{{ end -}}
{{- if $f.paymentLatency }}{{ $all = append $all (printf "payment-latency=%v" (int64 $f.paymentLatency)) }}{{ end -}}
{{- if $f.cartDataOutage }}{{ $all = append $all "cart-data-outage" }}{{ end -}}
{{- if $f.memoryLeak }}{{ $all = append $all (printf "memory-leak=%s" $f.memoryLeak) }}{{ end -}}
{{- range $role := keys .Values.roles | sortAlpha }}
{{- $all = concat $all ((index $.Values.roles $role).faults | default list) }}
{{- end -}}
{{- $all = uniq $all -}}
{{- $seen := dict -}}
{{- range $all }}
{{- $name := regexReplaceAll "=.*$" . "" }}
{{- if hasKey $seen $name }}
{{- fail (printf "faults: %s and %s: the shop's live fault state holds one value per fault; keep one of them (in faults: or in roles.<role>.faults)" (get $seen $name) .) }}
{{- end }}
{{- $_ := set $seen $name . }}
{{- end -}}
{{- $level := 1 -}}
{{- if $f.trafficSpike }}{{ $level = .Values.synthetics.trafficSpikeLevel }}{{ end -}}
{{- dict "live" (without $all "bind-localhost") "bindLocalhost" (has "bind-localhost" $all) "trafficLevel" (toString $level) | toJson -}}
{{- end -}}

{{/* The faults one role starts with (a JSON list): include "ecommerce.startFaults" (list $ "api-gateway") */}}
{{- define "ecommerce.startFaults" -}}
{{- $faults := include "ecommerce.faults" (index . 0) | fromJson -}}
{{- if and $faults.bindLocalhost (eq (index . 1) "api-gateway") -}}
{{- list "bind-localhost" | toJson -}}
{{- else -}}
{{- list | toJson -}}
{{- end -}}
{{- end -}}
