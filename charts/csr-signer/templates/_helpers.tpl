{{/* The chart's name, or nameOverride. */}}
{{- define "csr-signer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of every object: fullnameOverride, else the release name when it contains the chart's name
(a release named csr-signer gives csr-signer, the names of manifests/base), else <release>-<chart>.
*/}}
{{- define "csr-signer.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "csr-signer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "csr-signer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "csr-signer.labels" -}}
app.kubernetes.io/name: {{ include "csr-signer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The controller pods' selector (immutable once installed). */}}
{{- define "csr-signer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "csr-signer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{/* repository:tag, or repository@digest when a digest is set. Argument: an image map and the default tag. */}}
{{- define "csr-signer.imageReference" -}}
{{- $image := index . 0 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (toString (default (index . 1) $image.tag)) }}
{{- end }}
{{- end }}

{{/*
The signer names the controller may `sign` and `attest` for: "<domain>/*" for each of
rbac.signerDomains, rbac.signerNames and every Signer's spec.signerName in `signers`, without
duplicates. Fails on an empty list: a rule with no resourceNames would grant every signer name.
*/}}
{{- define "csr-signer.signerNames" -}}
{{- $names := list }}
{{- range .Values.rbac.signerDomains }}{{ $names = append $names (printf "%s/*" (trimSuffix "/" .)) }}{{ end }}
{{- range .Values.rbac.signerNames }}{{ $names = append $names . }}{{ end }}
{{- range .Values.signers }}{{ $names = append $names (required (printf "signers[%s].spec.signerName is required" .name) (dig "spec" "signerName" "" .)) }}{{ end }}
{{- if not $names }}{{ fail "rbac.signerDomains is empty and rbac.signerNames and signers list no signer name: list the signer name of every Signer (an empty resourceNames would grant them all)" }}{{ end }}
{{- toJson (uniq $names) }}
{{- end }}

{{/* The signer names the controller may `approve` for (kubelet-serving approval, Automatic Signers). */}}
{{- define "csr-signer.approveSignerNames" -}}
{{- $names := list }}
{{- if .Values.kubeletServing.approve }}{{ $names = append $names "kubernetes.io/kubelet-serving" }}{{ end }}
{{- range .Values.rbac.approveSignerNames }}{{ $names = append $names . }}{{ end }}
{{- range .Values.signers }}
{{- if eq (dig "spec" "approval" "mode" "" .) "Automatic" }}{{ $names = append $names .spec.signerName }}{{ end }}
{{- end }}
{{- toJson (uniq $names) }}
{{- end }}
