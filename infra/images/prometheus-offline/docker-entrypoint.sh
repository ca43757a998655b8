#!/bin/sh
# Writes Berth's metrics token where prometheus.yml's credentials_file points, then runs Prometheus.
set -eu
: "${BERTH_METRICS_TOKEN:?set BERTH_METRICS_TOKEN (the token Berth's /metrics expects)}"
umask 077
printf '%s' "$BERTH_METRICS_TOKEN" > /run/berth/metrics-token
exec /usr/bin/prometheus "$@"
