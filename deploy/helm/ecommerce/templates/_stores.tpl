{{/*
How the shop reaches its stores: cart-data and session-data (Redis) and product-data
(PostgreSQL), in the chart or outside it (<store>.external), decided here once for the
roles, the Jobs and the NetworkPolicies.
*/}}

{{/* The values of a store: include "ecommerce.storeValues" (list $ "cart-data") | fromJson */}}
{{- define "ecommerce.storeValues" -}}
{{- $root := index . 0 -}}
{{- toJson (get (dict "cart-data" $root.Values.cartData "session-data" $root.Values.sessionData "product-data" $root.Values.productData) (index . 1)) -}}
{{- end -}}

{{/* "true" when a store is outside the chart: include "ecommerce.storeExternal" (list $ "cart-data") */}}
{{- define "ecommerce.storeExternal" -}}
{{- $cfg := include "ecommerce.storeValues" . | fromJson -}}
{{- if $cfg.external.enabled }}true{{ end -}}
{{- end -}}

{{/*
How a store is reached, as JSON:
  external    outside the chart
  secretEnv   EnvVars to declare first (the password <STORE>_PASSWORD, from a Secret), which
              the URLs may name as $(<STORE>_PASSWORD)
  url         the primary's URL as an EnvVar source: {"value": ...} or {"valueFrom": ...}
  replicaUrl  the replica's, or absent (Redis only)
  faultState  session-data only: the live fault state's, database 1 of the same Redis
  ca          the CA to trust (external only, when given): {"secret"|"configMap": name, "key"}
  ports       where the NetworkPolicies let its clients connect (external only), and
  cidrs       to which addresses (empty: any)
include "ecommerce.store" (list $ "session-data") | fromJson
*/}}
{{- define "ecommerce.store" -}}
{{- $root := index . 0 -}}
{{- $store := index . 1 -}}
{{- $cfg := include "ecommerce.storeValues" . | fromJson -}}
{{- $key := get (dict "cart-data" "cartData" "session-data" "sessionData" "product-data" "productData") $store -}}
{{- $redis := ne $store "product-data" -}}
{{- $passwordVar := printf "%s_PASSWORD" ($store | upper | replace "-" "_") -}}
{{- $out := dict "external" false "secretEnv" (list) -}}
{{- $ext := $cfg.external -}}
{{- if $ext.enabled }}
{{- $_ := set $out "external" true }}
{{- if $ext.existingSecret.name }}
{{- $_ := set $out "secretEnv" (list (dict "name" $passwordVar "valueFrom" (dict "secretKeyRef" (dict "name" $ext.existingSecret.name "key" $ext.existingSecret.key)))) }}
{{- end }}
{{- $fromSecret := dict }}
{{- with $ext.urlSecret }}{{ if .name }}{{ $fromSecret = . }}{{ end }}{{ end }}
{{- $ref := dict }}
{{- if $fromSecret.name }}
{{- $ref = dict "valueFrom" (dict "secretKeyRef" (dict "name" $fromSecret.name "key" $fromSecret.key)) }}
{{- else if $ext.url }}
{{- $ref = dict "value" $ext.url }}
{{- else }}
{{- fail (printf "%s.external: set url (or urlSecret.name, a Secret holding the URL) to reach %s outside the chart" $key $store) }}
{{- end }}
{{- $_ := set $out "url" $ref }}
{{- if $redis }}
{{- if and $fromSecret.name $fromSecret.replicaKey }}
{{- $_ := set $out "replicaUrl" (dict "valueFrom" (dict "secretKeyRef" (dict "name" $fromSecret.name "key" $fromSecret.replicaKey))) }}
{{- else if $ext.replicaUrl }}
{{- $_ := set $out "replicaUrl" (dict "value" $ext.replicaUrl) }}
{{- end }}
{{- if eq $store "session-data" }}
{{- if $ext.faultStateUrl }}
{{- $_ := set $out "faultState" (dict "value" $ext.faultStateUrl) }}
{{- else if and $fromSecret.name $fromSecret.faultStateKey }}
{{- $_ := set $out "faultState" (dict "valueFrom" (dict "secretKeyRef" (dict "name" $fromSecret.name "key" $fromSecret.faultStateKey))) }}
{{- else if $fromSecret.name }}
{{- fail "sessionData.external: with the URL in a Secret, the live fault state's URL must come from it too (urlSecret.faultStateKey) or be given (faultStateUrl)" }}
{{- else }}
{{- /* Database 1 of the same Redis: the URL with its database replaced, its query kept. */ -}}
{{- $_ := set $out "faultState" (dict "value" (regexReplaceAll "^([a-z]+://[^/?#]*)(/[0-9]*)?([?].*)?$" $ext.url "${1}/1${3}")) }}
{{- end }}
{{- end }}
{{- end }}
{{- with $ext.ca }}
{{- if and .secret .configMap }}
{{- fail (printf "%s.external.ca: name a Secret or a ConfigMap, not both" $key) }}
{{- end }}
{{- if .secret }}{{ $_ := set $out "ca" (dict "secret" .secret "key" .key) }}{{ end }}
{{- if .configMap }}{{ $_ := set $out "ca" (dict "configMap" .configMap "key" .key) }}{{ end }}
{{- end }}
{{- /* The ports its clients connect to: `port`, else those of the URLs, else the default. */ -}}
{{- $default := ternary 6379 5432 $redis }}
{{- $ports := list }}
{{- if $ext.port }}
{{- $ports = list (int $ext.port) }}
{{- else }}
{{- range $u := list $out.url $out.replicaUrl }}
{{- if and $u $u.value }}
{{- $parsed := urlParse $u.value }}
{{- $port := $default }}
{{- if ne $parsed.host $parsed.hostname }}{{ $port = int (trimPrefix (printf "%s:" $parsed.hostname) $parsed.host) }}{{ end }}
{{- $ports = append $ports $port }}
{{- end }}
{{- end }}
{{- end }}
{{- $_ := set $out "ports" ($ports | default (list $default) | uniq) }}
{{- $_ := set $out "cidrs" ($ext.cidrs | default list) }}
{{- else }}
{{- $host := include "ecommerce.component" (list $root $store) }}
{{- if $redis }}
{{- $_ := set $out "url" (dict "value" (printf "redis://%s:6379" $host)) }}
{{- if $cfg.replica.enabled }}
{{- $_ := set $out "replicaUrl" (dict "value" (printf "redis://%s-replica:6379" $host)) }}
{{- end }}
{{- if eq $store "session-data" }}
{{- $_ := set $out "faultState" (dict "value" (printf "redis://%s:6379/1" $host)) }}
{{- end }}
{{- else }}
{{- /* The password from its Secret, expanded by Kubernetes into the URL. */ -}}
{{- $secret := include "ecommerce.productDataSecret" $root | fromJsonArray }}
{{- $_ := set $out "secretEnv" (list (dict "name" $passwordVar "valueFrom" (dict "secretKeyRef" (dict "name" (index $secret 0) "key" (index $secret 1))))) }}
{{- $_ := set $out "url" (dict "value" (printf "postgres://%s:$(%s)@%s:5432/products" $cfg.username $passwordVar $host)) }}
{{- end }}
{{- end }}
{{- toJson $out -}}
{{- end -}}

{{/*
The Secret and key of the in-chart PostgreSQL's password, as a JSON list [name, key]:
productData.existingSecret, else the chart's own <fullname>-product-data (key password).
*/}}
{{- define "ecommerce.productDataSecret" -}}
{{- $own := .Values.productData.existingSecret -}}
{{- if $own.name -}}
{{- list $own.name ($own.key | default "password") | toJson -}}
{{- else -}}
{{- list (include "ecommerce.component" (list . "product-data")) "password" | toJson -}}
{{- end -}}
{{- end -}}

{{/*
What a container uses of the stores: a list of [store, part, variable] (part: url,
replicaUrl or faultState); a part the store lacks (a replica) is left out.
include "ecommerce.storesEnv" (list $ (list (list "session-data" "faultState" "ECOMMERCE_FAULT_STATE") ...))
-> the EnvVars, YAML: the passwords first (each once), then the URLs that may name them,
then ECOMMERCE_CA_FILE when a store's CA is mounted (see "ecommerce.storesCa").
*/}}
{{- define "ecommerce.storesEnv" -}}
{{- $root := index . 0 -}}
{{- $env := list -}}
{{- $declared := dict -}}
{{- range $use := index . 1 }}
{{- $s := include "ecommerce.store" (list $root (index $use 0)) | fromJson }}
{{- range $s.secretEnv }}
{{- if not (hasKey $declared .name) }}
{{- $env = append $env . }}
{{- $_ := set $declared .name true }}
{{- end }}
{{- end }}
{{- end }}
{{- range $use := index . 1 }}
{{- $s := include "ecommerce.store" (list $root (index $use 0)) | fromJson }}
{{- with get $s (index $use 1) }}
{{- $env = append $env (merge (dict "name" (index $use 2)) .) }}
{{- end }}
{{- end }}
{{- with include "ecommerce.storesCa" . | fromJson }}
{{- $env = append $env (dict "name" "ECOMMERCE_CA_FILE" "value" .file) }}
{{- end }}
{{- if $env }}
{{- toYaml $env -}}
{{- end }}
{{- end -}}

{{/*
The CA a container trusts for the stores it uses (same arguments as "ecommerce.storesEnv"),
as JSON: {} when none, else {"file": the ECOMMERCE_CA_FILE path, "volume": the pod's Volume,
"mount": the container's VolumeMount}. One file per process: stores whose CAs differ cannot
share a container, so that fails (put both certificates in one bundle and name it in both).
*/}}
{{- define "ecommerce.storesCa" -}}
{{- $root := index . 0 -}}
{{- $cas := dict -}}
{{- range $use := index . 1 }}
{{- $s := include "ecommerce.store" (list $root (index $use 0)) | fromJson }}
{{- with $s.ca }}
{{- $_ := set $cas (toJson .) (index $use 0) }}
{{- end }}
{{- end }}
{{- if gt (len $cas) 1 }}
{{- fail (printf "the external stores %s name different CAs, but one process trusts one CA file (ECOMMERCE_CA_FILE): put the certificates in one bundle and name it in each store's external.ca" (values $cas | uniq | sortAlpha | join " and ")) }}
{{- end }}
{{- range $ca, $_ := $cas }}
{{- $ca = fromJson $ca }}
{{- $items := list (dict "key" $ca.key "path" "ca.crt") }}
{{- $source := dict }}
{{- if $ca.secret }}
{{- $source = dict "secret" (dict "secretName" $ca.secret "items" $items) }}
{{- else }}
{{- $source = dict "configMap" (dict "name" $ca.configMap "items" $items) }}
{{- end }}
{{- dict "file" "/etc/ecommerce/ca/ca.crt" "volume" (merge (dict "name" "store-ca") $source) "mount" (dict "name" "store-ca" "mountPath" "/etc/ecommerce/ca" "readOnly" true) | toJson }}
{{- else -}}
{{- dict | toJson -}}
{{- end }}
{{- end -}}

{{/*
The stores one role uses, for "ecommerce.storesEnv": every role follows the live fault state
(session-data); the web-gateway keeps sessions, cart carts, product reads the catalog.
include "ecommerce.roleStores" (list $ "cart") | fromJsonArray
*/}}
{{- define "ecommerce.roleStores" -}}
{{- $role := index . 1 -}}
{{- $uses := list -}}
{{- if eq $role "web-gateway" }}
{{- $uses = append $uses (list "session-data" "url" "ECOMMERCE_SESSION_DATA") }}
{{- $uses = append $uses (list "session-data" "replicaUrl" "ECOMMERCE_SESSION_DATA_REPLICA") }}
{{- end }}
{{- if eq $role "cart" }}
{{- $uses = append $uses (list "cart-data" "url" "ECOMMERCE_CART_DATA") }}
{{- $uses = append $uses (list "cart-data" "replicaUrl" "ECOMMERCE_CART_DATA_REPLICA") }}
{{- end }}
{{- if eq $role "product" }}
{{- $uses = append $uses (list "product-data" "url" "ECOMMERCE_PRODUCT_DATA") }}
{{- end }}
{{- $uses = append $uses (list "session-data" "faultState" "ECOMMERCE_FAULT_STATE") }}
{{- toJson $uses -}}
{{- end -}}

{{/*
The readiness probe of a Redis replica, a script for `sh -c <script> replica-ready <port>
<marker>`: ready while Redis answers (not LOADING) and its first full sync from the primary
is done, which the marker file remembers once the link to the primary was up. So a fresh
replica is not ready before it holds the data, and a synced one stays ready while the
primary is down. The marker lives beside the data (/data), so both go together.
*/}}
{{- define "ecommerce.redisReplicaReady" -}}
[ "$(redis-cli -p "$1" ping)" = PONG ] || exit 1
[ -e "$2" ] && exit 0
redis-cli -p "$1" info replication | grep -q '^master_link_status:up' || exit 1
touch "$2"
{{- end -}}
