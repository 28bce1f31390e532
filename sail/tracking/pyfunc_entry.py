"""Models-from-code entry that `log_model` ships: mlflow runs it to build the pyfunc."""

from mlflow.models import set_model

from sail.tracking.pyfunc import SailEmbeddingPyfunc

set_model(SailEmbeddingPyfunc())
