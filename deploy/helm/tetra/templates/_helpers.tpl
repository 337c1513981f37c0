{{/* Labels on every object. */}}
{{- define "tetra.labels" -}}
app.kubernetes.io/part-of: tetra
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{- define "tetra.agentImage" -}}
{{ .Values.agent.image.repository }}:{{ .Values.agent.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "tetra.exportStdoutImage" -}}
{{ .Values.exportStdout.image.repository }}:{{ .Values.exportStdout.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "tetra.operatorImage" -}}
{{ .Values.operator.image.repository }}:{{ .Values.operator.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
The agent's flags: agent.flags plus those derived from other values, as a YAML map.
The ConfigMap holds their values; the DaemonSet passes each as --<key>=<value>.
*/}}
{{- define "tetra.agentFlags" -}}
{{- $flags := deepCopy .Values.agent.flags -}}
{{- $_ := set $flags "export-filename" (printf "/var/run/tetragon/%s" .Values.agent.exportFilename) -}}
{{- $_ := set $flags "procfs" "/procRoot" -}}
{{- $_ := set $flags "run-dir" "/var/run/tetragon" -}}
{{- if .Values.agent.btf.hostPath -}}
{{- $_ := set $flags "btf" "/var/lib/tetragon/btf" -}}
{{- end -}}
{{- if .Values.agent.metrics.enabled -}}
{{- $_ := set $flags "metrics-server" (printf "0.0.0.0:%d" (int .Values.agent.metrics.port)) -}}
{{- end -}}
{{- toYaml $flags -}}
{{- end }}

{{/* The environment variable carrying flag <key> from the ConfigMap. */}}
{{- define "tetra.flagEnv" -}}
TETRA_FLAG_{{ . | upper | replace "-" "_" }}
{{- end }}

{{/*
The API credentials of a pod, declared rather than left to the ServiceAccount admission
plugin (some clusters run without it, and their pods get no token): the same projected
volume the plugin would add, mounted where in-cluster clients look.
*/}}
{{- define "tetra.apiAccessMount" -}}
- name: kube-api-access
  mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  readOnly: true
{{- end }}

{{- define "tetra.apiAccessVolume" -}}
- name: kube-api-access
  projected:
    defaultMode: 420 # 0644, as the admission plugin sets it
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: {{ .Values.serviceAccountToken.expirationSeconds }}
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                fieldPath: metadata.namespace
{{- end }}
