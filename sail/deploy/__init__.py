"""Deploying the model: the KServe InferenceService (render, write, create or patch) and the
pipeline's deploy step. Cluster manifests for the rest of the platform live in manifests/.

- `sail.deploy.inference_service`: render_inference_service, to_manifest, write_manifest,
  plan_apply, apply_inference_service
- `sail.deploy.deploy`: deploy (the step), cluster_configured
- `sail.deploy.models`: manifests <-> kubernetes / kserve client models, checked field by field
"""
