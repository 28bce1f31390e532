"""`make hostile`: the attacks and faults the platform must survive, tried for real, with figures.

Each section (`hostile.requests`, `hostile.publish`, `hostile.training`, `hostile.validation`)
starts the real parts it needs (the model server, the PostgreSQL online store, the trainer, the
validation step, the kfp pipeline) on 127.0.0.1, tries its cases with bounded loops, and returns
`Section`s: a table and whether every row held. `python -m hostile` runs them all and writes
`hostile/results.json` and `docs/reliability.md`.
"""
