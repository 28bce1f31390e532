"""Kubeflow Pipelines components, one per folder; each calls `sail.pipeline.steps`."""
