"""Benchmarks: `python -m bench` (`make bench`) measures serving, inference precision, compact
embeddings, training, the pipeline and the feature store side by side on this machine and writes
`bench/results.json` and `docs/benchmarks.md`.

Every suite measures its variants in the same run (interleaved where cheap, after a warm-up) and
reports ratios against a reference measured in that run, never against numbers from elsewhere.
"""

SUITES = ("serving", "precision", "compact", "training", "pipeline", "feature_store")
