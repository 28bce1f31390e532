"""Each catalogue is evaluated and published under the instructions it was trained with."""

from model_code.data.catalogue import CATALOGUES
from model_code.evaluation.suite import catalogue_instructions
from model_code.training.stages import load_stage


def test_every_catalogue_has_its_training_instructions():
    for name in CATALOGUES:
        assert set(catalogue_instructions(name)) == {"query", "target"}


def test_movies_are_embedded_under_the_instruction_whose_adapter_the_cre_stages_train():
    movie = catalogue_instructions("movielens")["target"]
    for stage in ("seq2item", "id2item"):
        adapted = [d for d in load_stage(stage).datasets if d.adapter]
        assert [movie] == [d.instructions["target"] for d in adapted]
