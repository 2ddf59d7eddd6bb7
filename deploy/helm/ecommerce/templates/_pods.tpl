{{/* What every pod of the chart shares: security contexts, scheduling, ServiceAccount, labels. */}}

{{/*
A security context: the chart's own (a dict), with each override applied over it in turn
(the global value, then a role's): a key set replaces the chart's, a key set to null
removes it (OpenShift's restricted-v2 assigns runAsUser and fsGroup itself).
include "ecommerce.overridden" (list <chart's dict> <override> ...) -> YAML
*/}}
{{- define "ecommerce.overridden" -}}
{{- $ctx := deepCopy (first .) -}}
{{- range $override := rest . }}
{{- range $key, $value := $override | default dict }}
{{- if kindIs "invalid" $value }}
{{- $_ := unset $ctx $key }}
{{- else }}
{{- $_ := set $ctx $key $value }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $ctx -}}
{{- end -}}

{{/*
securityContext of a pod whose processes run as the image's user: podSecurityContext and
the role's own applied over it.
include "ecommerce.podSecurityContext" (list $ (list <uid> <gid>) <role's values or dict>)
*/}}
{{- define "ecommerce.podSecurityContext" -}}
{{- $root := index . 0 -}}
{{- $uid := index . 1 -}}
{{- $spec := index . 2 | default dict -}}
{{- $ctx := dict
  "runAsNonRoot" true
  "runAsUser" (index $uid 0)
  "runAsGroup" (index $uid 1)
  "fsGroup" (index $uid 1)
  "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- include "ecommerce.overridden" (list $ctx $root.Values.podSecurityContext $spec.podSecurityContext) -}}
{{- end -}}

{{/*
securityContext of a container running as the image's user, restricted: containerSecurityContext
and the role's own applied over it.
include "ecommerce.containerSecurityContext" (list $ (list <uid> <gid>) <role's values or dict>)
*/}}
{{- define "ecommerce.containerSecurityContext" -}}
{{- $root := index . 0 -}}
{{- $uid := index . 1 -}}
{{- $spec := index . 2 | default dict -}}
{{- $ctx := dict
  "runAsNonRoot" true
  "runAsUser" (index $uid 0)
  "runAsGroup" (index $uid 1)
  "allowPrivilegeEscalation" false
  "readOnlyRootFilesystem" true
  "privileged" false
  "capabilities" (dict "drop" (list "ALL"))
  "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- include "ecommerce.overridden" (list $ctx $root.Values.containerSecurityContext $spec.containerSecurityContext) -}}
{{- end -}}

{{/*
The scheduling settings of one component's pods: the global imagePullSecrets, nodeSelector,
tolerations and affinity; topologySpreadConstraints and priorityClassName, a role's own
replacing the global ones. A spread constraint without a labelSelector spreads the
component's own pods.
include "ecommerce.podScheduling" (list $ <component> <role's values or dict>)
*/}}
{{- define "ecommerce.podScheduling" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $spec := index . 2 | default dict -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $spread := $spec.topologySpreadConstraints | default $root.Values.topologySpreadConstraints }}
{{- if $spread }}
{{- $constraints := list }}
{{- range $spread }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (include "ecommerce.selectorLabels" (list $root $component) | fromYaml)) }}
{{- end }}
{{- $constraints = append $constraints $c }}
{{- end }}
topologySpreadConstraints:
  {{- toYaml $constraints | nindent 2 }}
{{- end }}
{{- with $spec.priorityClassName | default $root.Values.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The ServiceAccount the shop's pods run as: serviceAccount.name, else <fullname> when the chart makes it, else the namespace's default. */}}
{{- define "ecommerce.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "ecommerce.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The account lines of a pod that asks the Kubernetes API nothing: the shop's ServiceAccount, without a token. */}}
{{- define "ecommerce.noApiAccess" -}}
serviceAccountName: {{ include "ecommerce.serviceAccountName" . }}
automountServiceAccountToken: false
{{- end -}}

{{/*
The labels of one component's pods: podLabels and the role's own, under the chart's (which
the Services, NetworkPolicies and budgets select on, so they always win).
include "ecommerce.podLabels" (list $ <component> <role's values or dict>)
*/}}
{{- define "ecommerce.podLabels" -}}
{{- $root := index . 0 -}}
{{- $spec := index . 2 | default dict -}}
{{- $labels := include "ecommerce.labels" (list $root (index . 1)) | fromYaml -}}
{{- $labels = merge $labels (deepCopy ($spec.podLabels | default dict)) (deepCopy $root.Values.podLabels) -}}
{{- toYaml $labels -}}
{{- end -}}
