"""One namespace's InferenceServices through the Kubernetes API: read, create, JSON-patch, and
the labels of their predictors' Knative Revisions (which model version each revision serves).

The kubernetes client's `CustomObjectsApi.patch_namespaced_custom_object` (30.1) always sends
`application/merge-patch+json`, and a merge patch replaces whole lists: the predictor's
`containers` (with their resources, arguments, image) would be replaced by whatever the patch
holds. `patch` therefore sends an RFC 6902 JSON patch (`application/json-patch+json`, which custom
resources accept) through the same client, so only the paths it names change.
"""

from __future__ import annotations

import json
import os
from typing import Any

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
JSON_PATCH = "application/json-patch+json"
KNATIVE_GROUP = "serving.knative.dev"
KNATIVE_VERSION = "v1"
REVISIONS = "revisions"


class ApiError(RuntimeError):
    """The API server refused a request; the message names the object and the server's reason."""


def kubernetes_api_client():
    """An API client for the pod's service account inside a cluster, else $KUBECONFIG or
    ~/.kube/config."""
    from kubernetes import client, config

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
    else:
        config.load_kube_config()
    return client.ApiClient()


class InferenceServices:
    """get / create / patch of the InferenceServices in `namespace`."""

    def __init__(self, namespace: str, api_client: Any = None):
        from kubernetes.client import CustomObjectsApi

        self.namespace = namespace
        self.api_client = api_client or kubernetes_api_client()
        self._objects = CustomObjectsApi(self.api_client)

    def where(self, name: str) -> str:
        return f"{self.namespace}/{name}"

    def get(self, name: str) -> dict | None:
        """The live object, or None when there is none."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self._objects.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise _api_error("read", self.where(name), error) from None

    def create(self, manifest: dict) -> dict:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._objects.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, manifest
            )
        except ApiException as error:
            where = self.where(manifest["metadata"]["name"])
            raise _api_error("create", where, error) from None

    def patch(self, name: str, operations: list[dict]) -> dict:
        """Apply a JSON patch (a list of RFC 6902 operations); the patched object."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api_client.call_api(
                f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{PLURAL}/{{name}}",
                "PATCH",
                path_params={"namespace": self.namespace, "name": name},
                header_params={"Content-Type": JSON_PATCH, "Accept": "application/json"},
                body=operations,
                response_type="object",
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
            )
        except ApiException as error:
            raise _api_error("patch", self.where(name), error) from None

    def revision_labels(self, revision: str) -> dict[str, str]:
        """The labels of a predictor's Knative Revision (Serverless mode): its pod template's,
        the model version label among them."""
        from kubernetes.client.exceptions import ApiException

        try:
            found = self._objects.get_namespaced_custom_object(
                KNATIVE_GROUP, KNATIVE_VERSION, self.namespace, REVISIONS, revision
            )
        except ApiException as error:
            raise _api_error("read", self.where(revision), error, "Revision") from None
        return (found.get("metadata") or {}).get("labels") or {}


def _api_error(action: str, where: str, error: Any, kind: str = "InferenceService") -> ApiError:
    """`cannot patch InferenceService ns/name: HTTP 422 Unprocessable Entity: <server message>`."""
    body = error.body.decode(errors="replace") if isinstance(error.body, bytes) else error.body
    try:
        message = json.loads(body or "{}").get("message", "")
    except (ValueError, AttributeError):
        message = body or ""
    detail = f": {message}" if message else ""
    return ApiError(f"cannot {action} {kind} {where}: HTTP {error.status} {error.reason}{detail}")
