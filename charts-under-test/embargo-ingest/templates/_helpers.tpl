{{/* Prefix of every object name. */}}
{{- define "embargo.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Pod selector of one component: (dict "ctx" $ "component" "redis"). */}}
{{- define "embargo.selectorLabels" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Standard labels of every object of one component. */}}
{{- define "embargo.labels" -}}
{{ include "embargo.selectorLabels" . }}
app.kubernetes.io/part-of: embargo-ingest
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* nodeSelector and tolerations for the system node group (global.*). */}}
{{- define "embargo.scheduling" -}}
{{- with .Values.global.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.global.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* nodeSelector and tolerations for the processing node group: ingest.*
     merged over global.* (ingest's keys win; both lists of tolerations). */}}
{{- define "embargo.processingScheduling" -}}
{{- with merge (deepCopy (.Values.ingest.nodeSelector | default dict)) (.Values.global.nodeSelector | default dict) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with concat (.Values.global.tolerations | default list) (.Values.ingest.tolerations | default list) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Replicas of a component spread over nodes, at most one apart
     (`when`: DoNotSchedule, or ScheduleAnyway where a lost node's pods must
     still find a place). */}}
{{- define "embargo.spread" -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: {{ .when }}
    labelSelector:
      matchLabels:
        {{- include "embargo.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 8 }}
{{- end -}}

{{- define "embargo.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .ctx.Chart.AppVersion) -}}
{{- end -}}

{{- define "embargo.redis.name" -}}{{ include "embargo.fullname" . }}-redis{{- end -}}

{{/* The Secret holding the Redis password (key "password"). */}}
{{- define "embargo.redis.secret" -}}
{{- .Values.redis.auth.existingSecret | default (include "embargo.redis.name" .) -}}
{{- end -}}

{{/* Pod annotation declaring a user-provided Redis Secret as external to the release. */}}
{{- define "embargo.externalRefs" -}}
{{- with .Values.redis.auth.existingSecret }}
policy.testware.io/external-refs: {{ printf "Secret/%s" . | quote }}
{{- end }}
{{- end -}}

{{/* A value kept across upgrades: the existing Secret's key if the release has one, else $value, else random. */}}
{{- define "embargo.persistentSecretValue" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret -}}
{{- if .value -}}
{{- .value | b64enc -}}
{{- else if and $existing (index $existing.data .key) -}}
{{- index $existing.data .key -}}
{{- else -}}
{{- randAlphaNum 32 | b64enc -}}
{{- end -}}
{{- end -}}

{{/* Environment every component needs to reach Redis. */}}
{{- define "embargo.redisEnv" -}}
- {name: REDIS_HOST, value: {{ include "embargo.redis.name" . | quote }}}
- {name: REDIS_PORT, value: {{ .Values.redis.port | quote }}}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "embargo.redis.secret" . | quote }}, key: password}
- {name: BUCKET, value: {{ .Values.bucket | quote }}}
{{- end -}}

{{- define "embargo.podSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
{{- end -}}

{{- define "embargo.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
{{- end -}}
