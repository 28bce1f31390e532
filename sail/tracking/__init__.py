"""MLflow around the model library: the store, pipeline runs, training metrics, the pyfunc model,
the registry and the champion gate. mlflow is imported in this package only."""
