"""The pipeline's library side: step logic, run profiles, the local runner, cluster commands."""
