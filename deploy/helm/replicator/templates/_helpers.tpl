{{/* Names, labels and the image reference shared by the templates. */}}

{{- define "replicator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The full name: the release name, or "<release>-<chart>". */}}
{{- define "replicator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "replicator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "replicator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "replicator.labels" -}}
{{ include "replicator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: replicator
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* repository@digest when a digest is set, else repository:tag. */}}
{{- define "replicator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "replicator.secretName" -}}
{{- default (include "replicator.fullname" .) .Values.secrets.name -}}
{{- end -}}

{{/* The bundled NATS cluster's names. */}}
{{- define "replicator.nats.fullname" -}}
{{- printf "%s-nats" (include "replicator.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "replicator.nats.selectorLabels" -}}
app.kubernetes.io/name: nats
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "replicator.nats.labels" -}}
{{ include "replicator.nats.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.natsCluster.image.tag | quote }}
app.kubernetes.io/part-of: replicator
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "replicator.nats.secretName" -}}
{{- default (include "replicator.nats.fullname" .) .Values.natsCluster.auth.secretName -}}
{{- end -}}

{{- define "replicator.nats.image" -}}
{{- $i := .Values.natsCluster.image -}}
{{- if $i.digest -}}
{{- printf "%s:%s@%s" $i.repository $i.tag $i.digest -}}
{{- else -}}
{{- printf "%s:%s" $i.repository $i.tag -}}
{{- end -}}
{{- end -}}

{{/* The replicator's config file: the user's config plus what the chart owns. */}}
{{- define "replicator.config" -}}
{{- $cfg := deepCopy (default dict .Values.config) -}}
{{- $metrics := default dict (get $cfg "metrics") -}}
{{- $_ := set $metrics "listen" (printf "0.0.0.0:%d" (int .Values.metrics.port)) -}}
{{- $_ := set $cfg "metrics" $metrics -}}
{{- if not .Values.buffer.external -}}
{{- $buffer := default dict (get $cfg "buffer") -}}
{{- $_ := set $buffer "data_dir" "/var/lib/replicator/buffer" -}}
{{- $_ := set $cfg "buffer" $buffer -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The bundled cluster's client URLs, with the password as $(NATS_PASSWORD).
Short DNS names (pod.service) resolve in the release's namespace. */}}
{{- define "replicator.nats.clientURLs" -}}
{{- $name := include "replicator.nats.fullname" . -}}
{{- $urls := list -}}
{{- range $i := until (int .Values.natsCluster.replicas) -}}
{{- $urls = append $urls (printf "nats://replicator:$(NATS_PASSWORD)@%s-%d.%s:4222" $name $i $name) -}}
{{- end -}}
{{- join "," $urls -}}
{{- end -}}
