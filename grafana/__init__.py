"""The Grafana dashboards, generated: `python -m grafana.build_dashboards` writes grafana/dashboards/*.json (the
chart ships them as they are) and the dbt exposures of what they read."""
