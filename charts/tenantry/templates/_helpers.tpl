{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "tenantry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name prefix of every object: fullnameOverride, else <release>-<chart> (or just the
release name when it already contains the chart name). 52 characters leave room for the
"-controlplane" suffix.
*/}}
{{- define "tenantry.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tenantry.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "tenantry.labels" -}}
helm.sh/chart: {{ include "tenantry.chart" . }}
app.kubernetes.io/name: {{ include "tenantry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tenantry
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "operator"). */}}
{{- define "tenantry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tenantry.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "tenantry.componentLabels" -}}
{{ include "tenantry.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The image reference: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "tenantry.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "tenantry.operator.fullname" -}}
{{- printf "%s-operator" (include "tenantry.fullname" .) }}
{{- end }}

{{- define "tenantry.controlplane.fullname" -}}
{{- printf "%s-controlplane" (include "tenantry.fullname" .) }}
{{- end }}

{{- define "tenantry.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "tenantry.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create=false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tenantry.controlplane.serviceAccountName" -}}
{{- if .Values.controlplane.serviceAccount.create }}
{{- default (include "tenantry.controlplane.fullname" .) .Values.controlplane.serviceAccount.name }}
{{- else }}
{{- required "controlplane.serviceAccount.name is required when controlplane.serviceAccount.create=false" .Values.controlplane.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Secret holding the control plane's connection URLs (database, redis). */}}
{{- define "tenantry.controlplane.secretName" -}}
{{- printf "%s-connections" (include "tenantry.controlplane.fullname" .) }}
{{- end }}

{{/* Volumes and mounts for a read-only root filesystem: a writable /tmp only. */}}
{{- define "tenantry.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{- define "tenantry.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
The control plane's environment (envFrom + env), shared by its Deployment and the
close-periods CronJob so both read the same settings and secrets.
*/}}
{{- define "tenantry.controlplane.env" -}}
{{- $root := . -}}
{{- $cp := .Values.controlplane -}}
envFrom:
  - configMapRef:
      name: {{ default (include "tenantry.controlplane.fullname" .) $cp.existingConfigMap }}
env:
  {{- with .Values.internalToken.existingSecret }}
  - name: TENANTRY_CP_INTERNAL_TOKEN
    valueFrom:
      secretKeyRef:
        name: {{ . }}
        key: {{ $root.Values.internalToken.secretKey }}
  {{- end }}
  - name: TENANTRY_CP_DATABASE_URL
    valueFrom:
      secretKeyRef:
        name: {{ default (include "tenantry.controlplane.secretName" .) $cp.database.existingSecret }}
        key: {{ $cp.database.secretKey }}
  - name: TENANTRY_CP_REDIS_URL
    valueFrom:
      secretKeyRef:
        name: {{ default (include "tenantry.controlplane.secretName" .) $cp.redis.existingSecret }}
        key: {{ $cp.redis.secretKey }}
  {{- with $cp.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
