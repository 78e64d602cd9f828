"""What an operator sees: access, event and outbound log lines, OpenTelemetry traces and metrics."""
