{{/* One CronJob running the loader image. Arguments: context, name, schedule, command (list),
     activeDeadlineSeconds, resources, backoffLimit, extraEnv (rendered YAML list items, optional). */}}
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
  schedule: {{ .schedule | quote }}
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: {{ $.Values.collector.startingDeadlineSeconds }}
  successfulJobsHistoryLimit: {{ $.Values.collector.successfulJobsHistoryLimit }}
  failedJobsHistoryLimit: {{ $.Values.collector.failedJobsHistoryLimit }}
  jobTemplate:
    spec:
      backoffLimit: {{ .backoffLimit }}
      activeDeadlineSeconds: {{ .activeDeadlineSeconds }}
      template:
        metadata:
          labels:
            {{- include "jhm.selectorLabels" $ | nindent 12 }}
            app.kubernetes.io/component: {{ .name }}
        spec:
          restartPolicy: Never
          {{- include "jhm.podSpecCommon" $ | nindent 10 }}
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
                {{- toYaml .resources | nindent 16 }}
              volumeMounts:
                - name: tmp
                  mountPath: /tmp
{{- end -}}
