"""Deployment: docker-compose.yml's companions, Kubernetes manifests and the configuration reference.

Run from a checkout (``python -m deploy.configref``); not installed with the package.
"""
