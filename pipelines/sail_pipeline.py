"""The SAIL-Embedding pipeline: ingest -> validate -> content stages 1-3 (with hard-negative
mining) -> ID teacher -> seq2item -> ID2item -> evaluate -> register (champion gate) -> publish ->
deploy.

The same function runs on one machine (kfp.local, `sail pipeline run`) and, compiled to
`sail_pipeline.yaml`, on a Kubeflow Pipelines cluster. Steps share only artifacts, services
reached by URI and named caches. The Kubernetes settings (ignored by kfp.local) give every pod
its pipeline run id and the platform's endpoints (the `sail-platform-config` ConfigMap), mount
the cache volume where a step fills a cache, request a GPU for training, and bound every step
with a timeout, and retry with backoff the steps whose work is a call to a service (ingest,
register, publish, deploy, closing the run): a deterministic failure, such as bad data or a loss
that reaches no parameter, is not repeated. Steps whose inputs are artifacts are cached; ingest
(its source can change under the same URI) and the steps that change services are not. Steps per
stage of 0 mean the stage config's own count. Publish and deploy run only when the gate made the
new version champion.
"""

from pathlib import Path

import yaml
from kfp import compiler, dsl, kubernetes

from components.deploy_endpoint.component import deploy_endpoint
from components.evaluate_model.component import evaluate_model
from components.finish_run.component import finish_run
from components.image import BASE_IMAGE
from components.ingest_data.component import ingest_data
from components.mine_negatives.component import mine_negatives
from components.publish_embeddings.component import publish_embeddings
from components.register_model.component import register_model
from components.train_stage.component import train_stage
from components.train_teacher.component import train_teacher
from components.validate_data.component import validate_data
from sail.deploy.inference_service import IMAGE_ENV, check_image

PIPELINE_NAME = "sail-embedding"
PLATFORM_CONFIG = "sail-platform-config"
STEP_ENV = ("MLFLOW_TRACKING_URI", "SAIL_CACHE_DIR")  # every step, from PLATFORM_CONFIG
FEAST_ENV = ("SAIL_FEAST_CONFIG", "SAIL_FEATURE_STORE", "FEAST_REGISTRY_PATH")  # publish, deploy
FEAST_SECRETS = {  # secret -> {key: variable}, as the feature server reads them
    "sail-s3-credentials": {key: key for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
    "sail-feast-online": {
        "host": "FEAST_ONLINE_HOST",
        "database": "FEAST_ONLINE_DATABASE",
        "username": "FEAST_ONLINE_USER",
        "password": "FEAST_ONLINE_PASSWORD",
        "sslmode": "FEAST_ONLINE_SSLMODE",
    },
}
# the pipeline's MLflow user (MLflow's basic-auth app): it logs, registers and moves aliases
MLFLOW_SECRET = (
    "sail-mlflow-pipeline",
    {"username": "MLFLOW_TRACKING_USERNAME", "password": "MLFLOW_TRACKING_PASSWORD"},
)
USER_ID = 1000  # the image's user sail
RUN_ID_ENV = "SAIL_PIPELINE_RUN_ID"
RUN_ID_FIELD = "metadata.labels['pipeline/runid']"  # KFP labels every pod of a run with its id
CACHE_VOLUME = ("sail-cache", "/var/cache/sail")  # rendered drawings, tower features
FEATURE_STORE_VOLUME = ("sail-feature-store", "/var/lib/sail/feature-store")
FEAST_CONFIG = ("sail-feast-config", "/etc/feast")
GPU = "nvidia.com/gpu"
HOUR = 3600


def _step(
    task: dsl.PipelineTask,
    name: str,
    timeout_s: int,
    cached: bool,
    caches: bool = False,
    retried: bool = False,
) -> dsl.PipelineTask:
    """Display name, caching, run id, endpoints and MLflow credentials from the cluster, a
    non-root user, a timeout, and for steps whose work is a service call (a failure there is likely
    transient) retries with backoff. KFP's backend adds allowPrivilegeEscalation false, drops every
    capability and sets the RuntimeDefault seccomp profile; it has no read-only root filesystem."""
    task.set_display_name(name).set_caching_options(cached)
    if retried:
        task.set_retry(2, backoff_duration="30s", backoff_factor=2.0, backoff_max_duration="600s")
    kubernetes.set_timeout(task, timeout_s)
    kubernetes.use_field_path_as_env(task, RUN_ID_ENV, RUN_ID_FIELD)
    kubernetes.use_config_map_as_env(task, PLATFORM_CONFIG, {key: key for key in STEP_ENV})
    kubernetes.use_secret_as_env(task, *MLFLOW_SECRET)
    kubernetes.set_security_context(
        task, run_as_user=USER_ID, run_as_group=USER_ID, run_as_non_root=True
    )
    if caches:
        kubernetes.mount_pvc(task, *CACHE_VOLUME)
    return task


def _training(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """What a training task asks of the cluster: CPU, memory and one GPU."""
    task.set_cpu_request("4").set_memory_request("16G").set_memory_limit("32G")
    return task.set_accelerator_type(GPU).set_accelerator_limit(1)


def _feature_store(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """The Feast settings, credentials, repository config and store folder of the steps that
    change the catalogue: publish, and deploy (the catalogue follows what serves)."""
    kubernetes.use_config_map_as_env(task, PLATFORM_CONFIG, {key: key for key in FEAST_ENV})
    for secret, variables in FEAST_SECRETS.items():
        kubernetes.use_secret_as_env(task, secret, variables)
    kubernetes.use_config_map_as_volume(task, *FEAST_CONFIG)
    return kubernetes.mount_pvc(task, *FEATURE_STORE_VOLUME)


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Train, evaluate, register, publish and serve the SAIL omni-modal embedding model.",
)
def sail_pipeline(
    preset: str = "mini",
    data_uri: str = "",
    data_limit: int = 0,
    content1_steps: int = 0,
    content2_steps: int = 0,
    content3_steps: int = 0,
    seq2item_steps: int = 0,
    id2item_steps: int = 0,
    gate_tolerance: float = 0.01,
    baseline_margin: float = 0.01,
    publish_dim: int = 128,
    stage_overrides: dict = {},  # noqa: B006 (a KFP default, never mutated)
):
    parameters = dict(locals())  # every pipeline parameter, for the MLflow parent run
    finish = _step(finish_run(), "close the MLflow run", 10 * 60, cached=False, retried=True)
    with dsl.ExitHandler(finish):
        ingest = ingest_data(data_uri=data_uri, data_limit=data_limit, run_parameters=parameters)
        _step(ingest, "ingest data", HOUR, cached=False, caches=True, retried=True)
        data = ingest.outputs["data"]
        validated = _step(validate_data(data=data), "validate data", HOUR // 2, cached=True)

        def stage(name: str, steps, **inputs) -> dsl.PipelineTask:
            task = train_stage(
                preset=preset,
                stage=name,
                steps=steps,
                data=data,
                stage_overrides=stage_overrides,
                **inputs,
            )
            task.after(validated)
            return _training(_step(task, f"train {name}", 6 * HOUR, cached=True, caches=True))

        content1 = stage("content1", content1_steps)
        content2 = stage("content2", content2_steps, init=content1.outputs["model"])
        mined = mine_negatives(preset=preset, data=data, model=content2.outputs["model"])
        _step(mined, "mine hard negatives", HOUR, cached=True, caches=True)
        content3 = stage(
            "content3",
            content3_steps,
            init=content2.outputs["model"],
            negatives=mined.outputs["negatives"],
        )
        teacher = train_teacher(data=data).after(validated)
        _step(teacher, "train ID teacher", HOUR, cached=True)
        seq2item = stage("seq2item", seq2item_steps, init=content3.outputs["model"])
        id2item = stage(
            "id2item",
            id2item_steps,
            init=seq2item.outputs["model"],
            teacher=teacher.outputs["teacher"],
        )
        evaluated = evaluate_model(preset=preset, data=data, model=id2item.outputs["model"])
        _step(evaluated, "evaluate", HOUR, cached=True, caches=True)
        registered = register_model(
            data=data,
            model=id2item.outputs["model"],
            evaluation=evaluated.outputs["evaluation"],
            tolerance=gate_tolerance,
            baseline_margin=baseline_margin,
        )
        _step(registered, "register", HOUR // 2, cached=False, retried=True)
        with dsl.If(registered.outputs["Output"] == True, name="promoted"):  # noqa: E712
            version = registered.outputs["version"]
            published = publish_embeddings(data=data, version=version, dim=publish_dim)
            published = _step(
                published, "publish embeddings", HOUR, cached=False, caches=True, retried=True
            )
            _feature_store(published)
            deployed = deploy_endpoint(version=version).after(published)
            _feature_store(_step(deployed, "deploy", HOUR // 2, cached=False, retried=True))


def compile_pipeline(package_path: str, image: str | None = None) -> str:
    """Write the compiled pipeline (IR YAML) to `package_path`. With `image` (a built image,
    best pinned by digest: `REF@sha256:...`) every step runs in it instead of the placeholder
    `components.image.BASE_IMAGE`, and gets it as `SAIL_IMAGE` (the image the deploy step renders
    the InferenceService with)."""
    compiler.Compiler().compile(sail_pipeline, package_path)
    if image is not None:
        _use_image(Path(package_path), image)
    return package_path


def _use_image(package: Path, image: str) -> None:
    """Point every executor of the compiled YAML at `image`."""
    check_image(image)
    documents = list(yaml.safe_load_all(package.read_text()))
    for executor in documents[0]["deploymentSpec"]["executors"].values():
        container = executor["container"]
        if container["image"] != BASE_IMAGE:
            raise ValueError(f"an executor runs {container['image']}, not {BASE_IMAGE}")
        container["image"] = image
        container.setdefault("env", []).append({"name": IMAGE_ENV, "value": image})
    package.write_text(yaml.safe_dump_all(documents, sort_keys=False))


if __name__ == "__main__":
    compile_pipeline("pipelines/sail_pipeline.yaml")
