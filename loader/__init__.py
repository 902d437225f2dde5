"""jupyterhub-metrics loader: extracts Kubernetes pods and directory users into raw tables."""

__version__ = "0.1.0"
