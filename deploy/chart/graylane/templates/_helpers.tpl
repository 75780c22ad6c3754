{{/* The controller's labels; the selector uses only the first one, as Kruise's control-plane label. */}}
{{- define "graylane.selector" -}}
control-plane: controller-manager
app.kubernetes.io/name: graylane
{{- end }}

{{- define "graylane.labels" -}}
{{ include "graylane.selector" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{/* Kruise's klog level as graylane's log level. */}}
{{- define "graylane.logLevel" -}}
{{- if ge (int .Values.rollout.log.level) 5 }}DEBUG{{ else }}INFO{{ end }}
{{- end }}
