"""The container image every component runs in, built from the repository's Dockerfile."""

BASE_IMAGE = "ghcr.io/sail-embedding/sail-platform:0.1.0"
