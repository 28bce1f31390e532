"""MLflow tracking, the pyfunc model and the registry (mlflow is imported by the submodules).

Importing the package switches mlflow's usage telemetry off unless the user chose otherwise:
the platform runs offline and sends nothing anywhere.
"""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
