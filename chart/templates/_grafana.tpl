{{/* The Grafana datasource provisioning file: read-only role, uid the dashboards refer to. */}}
{{- define "jhm.grafanaDatasource" -}}
apiVersion: 1
datasources:
  - name: JupyterHub Metrics
    uid: jupyterhub-metrics
    type: grafana-postgresql-datasource
    access: proxy
    url: {{ printf "%s:%s" (include "jhm.databaseHostQualified" .) (include "jhm.databasePort" .) }}
    user: {{ .Values.readonlyRole.user }}
    jsonData:
      database: {{ .Values.database.name }}
      sslmode: {{ ternary "disable" .Values.database.sslmode (not .Values.database.external.enabled) }}
      postgresVersion: {{ include "jhm.postgresVersion" . }}
      timescaledb: {{ not .Values.database.external.enabled }}
    secureJsonData:
      password: {{ .password | quote }}
{{- end -}}
