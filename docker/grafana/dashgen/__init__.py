"""Builds the provisioned Grafana dashboards of docker/grafana/dashboards (see generate.py)."""
