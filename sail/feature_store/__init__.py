"""The Feast feature store: publishing a model version (`publish`) and reading it (`query`).

See docs/feature-store.md. Submodules import feast (slow to import), so this package imports
nothing itself.
"""
