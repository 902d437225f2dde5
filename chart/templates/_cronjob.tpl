{{/* One CronJob running the loader image. Arguments: context, name, job (its values: schedule,
     activeDeadlineSeconds, startingDeadlineSeconds, history limits, resources), command (list), backoffLimit,
     token (mount the service account token: the collector only), extraEnv (rendered YAML list items, optional). */}}
{{- define "jhm.cronJob" -}}
{{- $ := .context -}}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ include "jhm.fullname" $ }}-{{ .name }}
  labels:
    {{- include "jhm.labels" $ | nindent 4 }}
    app.kubernetes.io/component: {{ .name }}
spec:
  schedule: {{ .job.schedule | quote }}
  timeZone: {{ $.Values.timeZone | quote }}
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: {{ .job.startingDeadlineSeconds }}
  successfulJobsHistoryLimit: {{ .job.successfulJobsHistoryLimit }}
  failedJobsHistoryLimit: {{ .job.failedJobsHistoryLimit }}
  jobTemplate:
    spec:
      backoffLimit: {{ .backoffLimit }}
      activeDeadlineSeconds: {{ .job.activeDeadlineSeconds }}
      template:
        metadata:
          {{- include "jhm.podMetadata" (dict "context" $ "component" .name) | nindent 10 }}
        spec:
          restartPolicy: Never
          {{- include "jhm.podSpecCommon" (dict "context" $ "token" (.token | default false)) | nindent 10 }}
          containers:
            - name: {{ .name }}
              image: {{ include "jhm.image" $ }}
              imagePullPolicy: {{ $.Values.image.pullPolicy }}
              command: {{ toJson .command }}
              env:
                {{- include "jhm.loaderEnv" $ | nindent 16 }}
                {{- with .extraEnv }}
                {{- . | nindent 16 }}
                {{- end }}
              securityContext:
                {{- toYaml $.Values.securityContext | nindent 16 }}
              resources:
                {{- toYaml .job.resources | nindent 16 }}
              volumeMounts:
                - name: tmp
                  mountPath: /tmp
{{- end -}}
