"""Outputs: durable JetStream consumers that write telemetry to Prometheus, VictoriaMetrics and InfluxDB."""
