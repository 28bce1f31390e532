"""Deploying the model: the KServe InferenceService (render, write, roll out, roll back) and the
pipeline's deploy step. Cluster manifests for the rest of the platform live in manifests/.

- `sail.deploy.deploy`: deploy (the step), render, cluster_configured
- `sail.deploy.inference_service`: render_inference_service, check_pinned, to_manifest,
  write_manifest, read_inference_service
- `sail.deploy.release`: the fields a release changes (model URI and version) as a JSON patch
- `sail.deploy.rollout`: roll_out, roll_back, wait_until_ready
- `sail.deploy.readiness`: whether an InferenceService is Ready, from its status
- `sail.deploy.api`: InferenceServices, the Kubernetes API calls (get, create, JSON patch)
- `sail.deploy.models`: manifests <-> kubernetes / kserve client models, checked field by field
"""
