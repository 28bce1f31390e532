"""The container image every component runs in, built from the repository's Dockerfile.

BASE_IMAGE is the placeholder the checked-in pipeline YAML names: the project's registry and the
package's release tag. A built image replaces it at compile time, pinned by digest:
`sail pipeline compile --image REF@sha256:...` (the digest `make image` records).
"""

BASE_IMAGE = "ghcr.io/sail-embedding/sail-platform:0.1.0"
