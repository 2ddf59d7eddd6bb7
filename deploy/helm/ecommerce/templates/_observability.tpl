{{/* What the observability stack (values `observability:`) runs, and how its parts find one another. */}}

{{/*
Which parts of the stack this release runs, and what flows where, decided once:
include "ecommerce.stack" . | fromJson
  collector, jaeger, prometheus (the chart's own), operator, grafana, loki: deployed or not
  exporters: the collector has exporters of the values' (otlphttp/<name>)
  traces, logs: the collector has a traces / logs pipeline (somewhere to send them)
  scrapes: the collector scrapes the roles' metrics (for the exporters)
  rolesExport: the roles export to the chart's collector (otel.endpoint is empty)
*/}}
{{- define "ecommerce.stack" -}}
{{- $o := .Values.observability -}}
{{- $collector := and $o.enabled $o.collector.enabled -}}
{{- $operator := and $o.enabled $o.prometheusOperator.enabled -}}
{{- $jaeger := and $o.enabled $o.jaeger.enabled -}}
{{- $loki := and $o.enabled $o.logs.enabled -}}
{{- $exporters := and $collector (gt (len $o.collector.exporters) 0) -}}
{{- $traces := and $collector (or $jaeger $exporters) -}}
{{- $logs := and $collector (or $loki $exporters) -}}
{{- $names := list -}}
{{- range $o.collector.exporters }}{{ $names = append $names .name }}{{ end -}}
{{- if ne (len $names) (len (uniq $names)) -}}
{{- fail (printf "observability.collector.exporters: each name may appear once (%s)" (join ", " $names)) -}}
{{- end -}}
{{- if and $collector (not $traces) (not $logs) -}}
{{- fail "observability.collector has nowhere to send what it receives: switch observability.jaeger or observability.logs on, add an entry to observability.collector.exporters, or switch the collector off" -}}
{{- end -}}
{{- dict
  "collector" $collector
  "jaeger" $jaeger
  "prometheus" (and $o.enabled $o.prometheus.enabled (not $operator))
  "operator" $operator
  "grafana" (and $o.enabled $o.grafana.enabled)
  "loki" $loki
  "exporters" $exporters
  "traces" $traces
  "logs" $logs
  "scrapes" $exporters
  "rolesExport" (and $collector (not .Values.otel.endpoint))
  | toJson -}}
{{- end -}}

{{/*
Where the roles send OTLP: otel.endpoint when set, else the chart's collector when it runs,
else nowhere (empty).
*/}}
{{- define "ecommerce.otelEndpoint" -}}
{{- if .Values.otel.endpoint -}}
{{- .Values.otel.endpoint -}}
{{- else if (include "ecommerce.stack" . | fromJson).collector -}}
{{- printf "http://%s:4318" (include "ecommerce.component" (list . "collector")) -}}
{{- end -}}
{{- end -}}

{{/*
OTEL_LOGS_EXPORTER of the roles: otlp when their logs have somewhere to go (a collector of
the user's, which takes every signal; the chart's collector with Loki or exporters), else
none.
*/}}
{{- define "ecommerce.otelLogsExporter" -}}
{{- $stack := include "ecommerce.stack" . | fromJson -}}
{{- ternary "otlp" "none" (or (not (empty .Values.otel.endpoint)) $stack.logs) -}}
{{- end -}}

{{/*
The roles' admin port for the scrapers, and the relabeling every scrape job of a role
shares (Prometheus' and the collector's alike): keep the pods of that role in this release
and the container port that is the admin port, add `namespace` and `pod`. The job is the
role's name. Written without "$": the collector would read "$1" as a variable of its own.
include "ecommerce.scrapeConfigs" $ -> a YAML list
*/}}
{{- define "ecommerce.scrapeConfigs" -}}
{{- $root := . -}}
{{- $interval := .Values.observability.prometheus.scrapeInterval -}}
{{- range $role, $_ := .Values.roles }}
{{- $labels := include "ecommerce.selectorLabels" (list $root $role) | fromYaml }}
- job_name: {{ $role }}
  scrape_interval: {{ $interval }}
  metrics_path: /metrics
  scheme: http
  kubernetes_sd_configs:
    - role: pod
      namespaces:
        names: [{{ $root.Release.Namespace | quote }}]
  relabel_configs:
    {{- range $key := keys $labels | sortAlpha }}
    - source_labels: [{{ printf "__meta_kubernetes_pod_label_%s" (regexReplaceAll "[^a-zA-Z0-9_]" $key "_") }}]
      regex: {{ index $labels $key | regexQuoteMeta | quote }}
      action: keep
    {{- end }}
    - source_labels: [__meta_kubernetes_pod_container_port_number]
      regex: {{ $root.Values.admin.port | int | quote }}
      action: keep
    - source_labels: [__meta_kubernetes_pod_phase]
      regex: Succeeded|Failed
      action: drop
    - source_labels: [__meta_kubernetes_namespace]
      target_label: namespace
    - source_labels: [__meta_kubernetes_pod_name]
      target_label: pod
{{- end }}
{{- end -}}

{{/*
The rule files of rules/*.yaml, as ConfigMap data: file name -> text. Empty when there is
none.
*/}}
{{- define "ecommerce.ruleFiles" -}}
{{- $files := dict -}}
{{- range $path, $_ := .Files.Glob "rules/*.yaml" }}
{{- $_ := set $files (base $path) ($.Files.Get $path) }}
{{- end }}
{{- toJson $files -}}
{{- end -}}

{{/* The dashboards of dashboards/*.json, as ConfigMap data: file name -> JSON text. */}}
{{- define "ecommerce.dashboardFiles" -}}
{{- $files := dict -}}
{{- range $path, $_ := .Files.Glob "dashboards/*.json" }}
{{- $_ := set $files (base $path) ($.Files.Get $path) }}
{{- end }}
{{- toJson $files -}}
{{- end -}}

{{/*
Every header the collector's exporters send, in order: exporter, header, the environment
variable that carries its value, and the Secret and key it comes from. A header that
existingSecret.keys names comes from that Secret; the others from the chart's Secret
<fullname>-collector-headers (key <exporter>.<header>).
include "ecommerce.exporterHeaders" . | fromJson -> {"headers": [...]}
*/}}
{{- define "ecommerce.exporterHeaders" -}}
{{- $chartSecret := include "ecommerce.component" (list . "collector-headers") -}}
{{- $out := list -}}
{{- range $i, $exporter := .Values.observability.collector.exporters }}
{{- $own := $exporter.existingSecret | default dict }}
{{- $ownKeys := $own.keys | default dict }}
{{- $names := concat (keys ($exporter.headers | default dict)) (keys $ownKeys) | uniq | sortAlpha }}
{{- range $j, $header := $names }}
{{- $entry := dict "exporter" $exporter.name "header" $header "env" (printf "EXPORTER_%d_HEADER_%d" $i $j) }}
{{- if hasKey $ownKeys $header }}
{{- $_ := set $entry "secret" $own.name }}
{{- $_ := set $entry "key" (index $ownKeys $header) }}
{{- else }}
{{- $_ := set $entry "secret" $chartSecret }}
{{- $_ := set $entry "key" (printf "%s.%s" $exporter.name $header) }}
{{- $_ := set $entry "value" (index $exporter.headers $header) }}
{{- end }}
{{- $out = append $out $entry }}
{{- end }}
{{- end }}
{{- dict "headers" $out | toJson -}}
{{- end -}}

{{/* Grafana's admin password, when the chart keeps it: the value given, the one in the cluster, or a new one. */}}
{{- define "ecommerce.grafanaPassword" -}}
{{- include "ecommerce.keptSecret" (list . (include "ecommerce.component" (list . "grafana")) "admin-password" .Values.observability.grafana.admin.password 24) -}}
{{- end -}}

{{/* The Secret and key Grafana reads its admin password from: (list <secret> <key>) as JSON. */}}
{{- define "ecommerce.grafanaAdminSecret" -}}
{{- $own := .Values.observability.grafana.admin.existingSecret -}}
{{- if $own.name -}}
{{- list $own.name $own.key | toJson -}}
{{- else -}}
{{- list (include "ecommerce.component" (list . "grafana")) "admin-password" | toJson -}}
{{- end -}}
{{- end -}}

{{/* The URL Grafana queries Prometheus at: the chart's, or the Operator's. Empty: none. */}}
{{- define "ecommerce.prometheusUrl" -}}
{{- $stack := include "ecommerce.stack" . | fromJson -}}
{{- if $stack.prometheus -}}
{{- printf "http://%s:9090" (include "ecommerce.component" (list . "prometheus")) -}}
{{- else if $stack.operator -}}
{{- .Values.observability.prometheusOperator.prometheusUrl -}}
{{- end -}}
{{- end -}}

{{/* The port a URL names, or its scheme's: include "ecommerce.urlPort" "https://x.example.com" -> 443 */}}
{{- define "ecommerce.urlPort" -}}
{{- $url := urlParse . -}}
{{- if ne $url.host $url.hostname -}}
{{- trimPrefix (printf "%s:" $url.hostname) $url.host -}}
{{- else -}}
{{- ternary 443 80 (eq $url.scheme "https") -}}
{{- end -}}
{{- end -}}

{{/*
A ServiceAccount that may discover the pods of the release's namespace (get, list, watch of
pods, endpoints and services there, nowhere else), for a component that scrapes the roles
through Kubernetes service discovery: include "ecommerce.discoveryAccess" (list $ "prometheus")
*/}}
{{- define "ecommerce.discoveryAccess" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $name := include "ecommerce.component" (list $root $component) -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  labels:
    {{- include "ecommerce.labels" (list $root $component) | nindent 4 }}
automountServiceAccountToken: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}
  labels:
    {{- include "ecommerce.labels" (list $root $component) | nindent 4 }}
rules:
  - apiGroups: [""]
    resources: [pods, endpoints, services]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}
  labels:
    {{- include "ecommerce.labels" (list $root $component) | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $name }}
    namespace: {{ $root.Release.Namespace }}
{{- end -}}
