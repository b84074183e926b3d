{{/* Prefix of every object name: the release, plus the chart name unless the release contains it. */}}
{{- define "efd.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Pod selector of one component: (dict "ctx" $ "component" "kafka"). */}}
{{- define "efd.selectorLabels" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Standard labels of every object of one component. */}}
{{- define "efd.labels" -}}
{{ include "efd.selectorLabels" . }}
app.kubernetes.io/part-of: efd
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* nodeSelector and tolerations for the system node group (global.*). */}}
{{- define "efd.scheduling" -}}
{{- with .Values.global.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.global.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* storageClassName line when global.storageClass is set. */}}
{{- define "efd.storageClass" -}}
{{- with .Values.global.storageClass }}
storageClassName: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* "repository:tag" of an image block, the tag defaulting to the chart's appVersion. */}}
{{- define "efd.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .ctx.Chart.AppVersion) -}}
{{- end -}}

{{/* Container security settings shared by every container. */}}
{{- define "efd.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  capabilities: {drop: [ALL]}
{{- end -}}

{{- define "efd.kafka.name" -}}{{ include "efd.fullname" . }}-kafka{{- end -}}
{{/* A broker pod's ordinal (its node.id) and name, for its command line
  (`$(POD_INDEX)`: the StatefulSet's pod-index label, Kubernetes >= 1.28). */}}
{{- define "efd.kafka.podIndex" -}}
- name: POD_INDEX
  valueFrom: {fieldRef: {fieldPath: "metadata.labels['apps.kubernetes.io/pod-index']"}}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
{{- end -}}
{{- define "efd.influxdb.name" -}}{{ include "efd.fullname" . }}-influxdb{{- end -}}
{{/* Bootstrap address of the broker, as seen from inside the namespace. */}}
{{- define "efd.kafka.bootstrap" -}}{{ include "efd.kafka.name" . }}:{{ .Values.kafka.port }}{{- end -}}
{{- define "efd.influxdb.url" -}}http://{{ include "efd.influxdb.name" . }}:{{ .Values.influxdb.port }}{{- end -}}
