"""register_model: log the pyfunc, register a version (challenger), run the champion gate."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register_model(
    data: Input[Dataset],
    model: Input[Model],
    evaluation: Input[Artifact],
    tolerance: float,
    baseline_margin: float,
    report: Output[Markdown],
    version: dsl.OutputPath(str),
) -> bool:
    """The new version (output `version`) always gets `challenger`; `champion` moves to it, and
    the step returns True, only if on the validation split every primary metric beats the
    frozen baseline by `baseline_margin` and is not worse than the champion's (on this data) by
    more than `tolerance`. (A bool return, not a NamedTuple: kfp.local resolves conditions on
    it.)"""
    import json
    from pathlib import Path

    from sail.pipeline import steps
    from sail.pipeline.isolation import step_scope
    from sail.pipeline.outputs import write_output
    from sail.tracking.gate import GatePolicy

    with step_scope("register", data.path):
        registration = steps.register(
            steps.exported_model(model.path),
            json.loads(Path(evaluation.path).read_text()),
            data.metadata["fingerprint"],
            GatePolicy(baseline_margin=baseline_margin, tolerance=tolerance),
            snapshot=data.metadata.get("snapshot"),
        )
    write_output(report.path, steps.registration_markdown(registration))
    write_output(version, registration.version)
    return registration.promoted
