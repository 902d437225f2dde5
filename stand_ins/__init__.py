"""Local HTTP servers that answer like the Kubernetes API and Microsoft Graph, for tests and benchmarks."""
