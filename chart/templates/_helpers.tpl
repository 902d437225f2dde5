{{- define "jhm.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "jhm.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "jhm.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "jhm.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "jhm.secretName" -}}{{ include "jhm.fullname" . }}{{- end -}}

{{- define "jhm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ .Values.serviceAccount.name | default (include "jhm.fullname" .) }}
{{- else -}}{{ .Values.serviceAccount.name | default "default" }}{{- end -}}
{{- end -}}

{{/* Labels and annotations of every pod of the chart: selector labels, the component, podLabels, podAnnotations. */}}
{{- define "jhm.podMetadata" -}}
{{- $ := .context -}}
labels:
  {{- include "jhm.selectorLabels" $ | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
  {{- with $.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with $.Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "jhm.databaseSecret" -}}{{ .Values.database.existingSecret | default (include "jhm.secretName" .) }}{{- end -}}
{{- define "jhm.readonlySecret" -}}{{ .Values.readonlyRole.existingSecret | default (include "jhm.secretName" .) }}{{- end -}}
{{- define "jhm.graphSecret" -}}{{ .Values.graph.existingSecret | default (include "jhm.secretName" .) }}{{- end -}}

{{- define "jhm.databaseHost" -}}
{{- if .Values.database.external.enabled -}}
{{- required "database.external.host is required when database.external.enabled is true" .Values.database.external.host -}}
{{- if not (or .Values.database.password .Values.database.existingSecret) -}}
{{- fail "database.external.enabled needs database.password or database.existingSecret: the chart cannot know an existing database's password" -}}
{{- end -}}
{{- else -}}
{{- printf "%s-timescaledb" (include "jhm.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The database host as any namespace resolves it (Grafana may run elsewhere). */}}
{{- define "jhm.databaseHostQualified" -}}
{{- if .Values.database.external.enabled -}}{{ include "jhm.databaseHost" . }}
{{- else -}}{{ printf "%s.%s.svc.%s" (include "jhm.databaseHost" .) .Release.Namespace .Values.clusterDomain }}{{- end -}}
{{- end -}}

{{/* The bundled image's PostgreSQL major, from its tag (2.29.2-pg18 gives 18). */}}
{{- define "jhm.bundledPostgresMajor" -}}
{{- $major := regexFind "[0-9]+$" (regexFind "pg[0-9]+" .Values.timescaledb.image.tag) -}}
{{- if not $major -}}{{ fail (printf "timescaledb.image.tag %q names no PostgreSQL major (-pgNN): use a timescale/timescaledb tag such as 2.29.2-pg18" .Values.timescaledb.image.tag) }}{{- end -}}
{{- $major -}}
{{- end -}}

{{/* PostgreSQL major version times 100, as Grafana's datasource wants it: the bundled image's, or
     database.external.postgresVersion. */}}
{{- define "jhm.postgresVersion" -}}
{{- if .Values.database.external.enabled -}}{{ mul .Values.database.external.postgresVersion 100 }}
{{- else -}}{{ mul (include "jhm.bundledPostgresMajor" . | atoi) 100 }}{{- end -}}
{{- end -}}

{{- define "jhm.databasePort" -}}
{{- if .Values.database.external.enabled -}}{{ .Values.database.external.port }}{{- else -}}5432{{- end -}}
{{- end -}}

{{- define "jhm.graphEnabled" -}}
{{- if and .Values.usersSync.enabled (or .Values.graph.existingSecret (and .Values.graph.tenantId .Values.graph.clientId .Values.graph.clientSecret)) -}}true{{- end -}}
{{- end -}}

{{/* A secret value: the given one, else the one stored by an earlier release (so upgrades keep it),
     else a random one. Generated values are remembered for the rest of this render, so every
     template that needs one (the Secret and the Grafana datasource) gets the same. */}}
{{- define "jhm.secretValue" -}}
{{- $cache := .context.Values._generatedSecrets | default dict -}}
{{- $existing := lookup "v1" "Secret" .context.Release.Namespace (include "jhm.secretName" .context) -}}
{{- if .value -}}
{{- .value -}}
{{- else if and $existing (index ($existing.data | default dict) .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else if hasKey $cache .key -}}
{{- index $cache .key -}}
{{- else -}}
{{- $generated := ternary (randBytes 32 | b64dec | printf "%x") (randAlphaNum 32) (.hex | default false) -}}
{{- $_ := set $cache .key $generated -}}
{{- $_ := set .context.Values "_generatedSecrets" $cache -}}
{{- $generated -}}
{{- end -}}
{{- end -}}

{{- define "jhm.loaderEnv" -}}
- name: DB_HOST
  value: {{ include "jhm.databaseHost" . | quote }}
- name: DB_PORT
  value: {{ include "jhm.databasePort" . | quote }}
- name: DB_NAME
  value: {{ .Values.database.name | quote }}
- name: DB_USER
  value: {{ .Values.database.user | quote }}
- name: DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "jhm.databaseSecret" . }}
      key: DB_PASSWORD
- name: DB_SSLMODE
  value: {{ .Values.database.sslmode | quote }}
- name: RAW_SCHEMA
  value: {{ .Values.database.rawSchema | quote }}
- name: DBT_SCHEMA
  value: {{ .Values.database.analyticsSchema | quote }}
# dbt writes its artefacts and logs; the root filesystem is read-only.
- name: DBT_TARGET_PATH
  value: /tmp/dbt/target
- name: DBT_LOG_PATH
  value: /tmp/dbt/logs
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
- name: READONLY_DB_USER
  value: {{ .Values.readonlyRole.user | quote }}
- name: READONLY_STATEMENT_TIMEOUT
  value: {{ .Values.readonlyStatementTimeoutSeconds | quote }}
- name: SESSION_GAP_MINUTES
  value: {{ .Values.rules.sessionGapMinutes | quote }}
- name: CPU_NODE_PATTERN
  value: {{ .Values.rules.cpuNodePattern | quote }}
- name: GPU_NODE_PATTERNS
  value: {{ .Values.rules.gpuNodePatterns | quote }}
- name: IDLE_CPU_CORES
  value: {{ .Values.rules.idleCpuCores | quote }}
- name: IDLE_GPU_UTILIZATION
  value: {{ .Values.rules.idleGpuUtilization | quote }}
- name: STALE_HOME_DAYS
  value: {{ .Values.rules.staleHomeDays | quote }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Arguments: context, and token (true only for the collector, the one pod that calls the Kubernetes API). */}}
{{- define "jhm.podSpecCommon" -}}
{{- $token := .token -}}
{{- with .context -}}
serviceAccountName: {{ include "jhm.serviceAccountName" . }}
automountServiceAccountToken: {{ $token }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
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
volumes:
  - name: tmp
    emptyDir: {}
{{- end -}}
{{- end -}}

{{- define "jhm.collectorEnv" -}}
- name: COLLECT_NAMESPACES
  value: {{ join "," .Values.collector.namespaces | quote }}
- name: COLLECT_SELECTOR
  value: {{ .Values.collector.selector | quote }}
- name: COLLECT_USER_FROM
  value: {{ .Values.collector.userFrom | quote }}
- name: COLLECT_NAME_FROM
  value: {{ .Values.collector.nameFrom | quote }}
- name: COLLECT_EMAIL_DOMAIN
  value: {{ .Values.collector.emailDomain | quote }}
- name: CLUSTER_NAME
  value: {{ .Values.collector.clusterName | quote }}
- name: COLLECT_READ_NODES
  value: {{ .Values.rbac.readNodes | quote }}
- name: PROMETHEUS_URL
  value: {{ .Values.prometheus.url | quote }}
{{- if or .Values.prometheus.token .Values.prometheus.existingSecret }}
- name: PROMETHEUS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.prometheus.existingSecret | default (include "jhm.secretName" .) }}
      key: PROMETHEUS_TOKEN
{{- end }}
{{- if and .Values.hub.apiUrl (not (or .Values.hub.apiToken .Values.hub.existingSecret)) }}
{{- fail "hub.apiUrl needs hub.apiToken or hub.existingSecret: the hub's API answers no one without a token" }}
{{- end }}
- name: HUB_API_URL
  value: {{ .Values.hub.apiUrl | quote }}
{{- if or .Values.hub.apiToken .Values.hub.existingSecret }}
- name: HUB_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.hub.existingSecret | default (include "jhm.secretName" .) }}
      key: HUB_API_TOKEN
{{- end }}
{{- end -}}

{{/* Tenant and client ids are not secret: from values when given; the client secret from a Secret. */}}
{{- define "jhm.graphEnv" -}}
{{- range $name, $value := dict "AZURE_TENANT_ID" $.Values.graph.tenantId "AZURE_CLIENT_ID" $.Values.graph.clientId }}
- name: {{ $name }}
{{- if $value }}
  value: {{ $value | quote }}
{{- else }}
  valueFrom:
    secretKeyRef:
      name: {{ include "jhm.graphSecret" $ }}
      key: {{ $name }}
{{- end }}
{{- end }}
- name: AZURE_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "jhm.graphSecret" $ }}
      key: AZURE_CLIENT_SECRET
{{- end -}}
