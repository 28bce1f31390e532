"""The SAIL-Embedding pipeline: validate -> content stages 1-3 (with hard-negative mining) ->
ID teacher -> seq2item -> ID2item -> evaluate -> register (champion gate) -> publish -> deploy.

The same function runs on one machine (kfp.local, `sail pipeline run`) and, compiled to
`sail_pipeline.yaml`, on a Kubeflow Pipelines cluster. Steps per stage of 0 mean the stage
config's own count. Publish and deploy run only when the gate made the new version champion.
"""

from kfp import compiler, dsl

from components.deploy_endpoint.component import deploy_endpoint
from components.evaluate_model.component import evaluate_model
from components.finish_run.component import finish_run
from components.mine_negatives.component import mine_negatives
from components.publish_embeddings.component import publish_embeddings
from components.register_model.component import register_model
from components.train_stage.component import train_stage
from components.train_teacher.component import train_teacher
from components.validate_data.component import validate_data

PIPELINE_NAME = "sail-embedding"


def _named(task: dsl.PipelineTask, name: str) -> dsl.PipelineTask:
    """Display name, and no KFP cache: inputs live at fixed paths whose content changes."""
    return task.set_display_name(name).set_caching_options(False)


def _heavy(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Resources of a training task on a cluster (the local runner ignores them)."""
    return task.set_cpu_request("4").set_memory_request("16G").set_memory_limit("32G")


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Train, evaluate, register, publish and serve the SAIL omni-modal embedding model.",
)
def sail_pipeline(
    preset: str = "mini",
    sail_home: str = "",
    content1_steps: int = 0,
    content2_steps: int = 0,
    content3_steps: int = 0,
    seq2item_steps: int = 0,
    id2item_steps: int = 0,
    gate_tolerance: float = 0.01,
    publish_dim: int = 128,
):
    run_id = dsl.PIPELINE_JOB_ID_PLACEHOLDER
    common = {"pipeline_run_id": run_id, "sail_home": sail_home}
    with dsl.ExitHandler(_named(finish_run(**common), "close the MLflow run")):
        data = _named(validate_data(**common), "validate data").outputs["data"]

        def stage(name: str, steps, **inputs):
            task = train_stage(
                preset=preset, stage=name, steps=steps, data=data, **common, **inputs
            )
            return _heavy(_named(task, f"train {name}"))

        content1 = stage("content1", content1_steps)
        content2 = stage("content2", content2_steps, init=content1.outputs["model"])
        mined = mine_negatives(preset=preset, model=content2.outputs["model"], **common)
        _named(mined, "mine hard negatives")
        content3 = stage(
            "content3",
            content3_steps,
            init=content2.outputs["model"],
            negatives=mined.outputs["negatives"],
        )
        teacher = _named(train_teacher(data=data, **common), "train ID teacher")
        seq2item = stage("seq2item", seq2item_steps, init=content3.outputs["model"])
        id2item = stage(
            "id2item",
            id2item_steps,
            init=seq2item.outputs["model"],
            teacher=teacher.outputs["teacher"],
        )
        evaluated = evaluate_model(data=data, model=id2item.outputs["model"], **common)
        _named(evaluated, "evaluate")
        registered = register_model(
            data=data,
            model=id2item.outputs["model"],
            evaluation=evaluated.outputs["evaluation"],
            tolerance=gate_tolerance,
            **common,
        )
        _named(registered, "register")
        with dsl.If(registered.outputs["Output"] == True, name="promoted"):  # noqa: E712
            version = registered.outputs["version"]
            published = publish_embeddings(version=version, dim=publish_dim, **common)
            _named(published, "publish embeddings")
            _named(deploy_endpoint(version=version, **common), "deploy").after(published)


def compile_pipeline(package_path: str) -> str:
    """Write the compiled pipeline (IR YAML) to `package_path`."""
    compiler.Compiler().compile(sail_pipeline, package_path)
    return package_path


if __name__ == "__main__":
    compile_pipeline("pipelines/sail_pipeline.yaml")
