"""Read a checkpoint written by PaddleNLP's few-shot example into what a fewshot classifier is built from.

``read_paddlenlp_model("checkpoints/", base_model="ernie-3.0-base-zh", trust_pickle=True)`` reads the
prompt model's pickled state, its template and label words (see :mod:`.paddlenlp_files`); from it
``PromptClassifier.from_paddlenlp`` builds a classifier that encodes texts exactly as PaddleNLP did (the
``PADDLENLP`` encoding style, labels in PaddleNLP's sorted order) and scores them with the same
verbalizer: PaddleNLP's ``ManualVerbalizer`` becomes the ``"paddlenlp"`` kind (its default options,
which PaddleNLP does not save), its one-mask ``SoftVerbalizer`` the ``"soft"`` kind. Saving it writes
safetensors, so the pickle is read once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import paddle

from ..errors import BundleError
from ..prompt.pretrained import load_pretrained
from ..prompt.verbalizers import VerbalizerArg, VerbalizerSpec
from ..tasks import build_task
from ..template import PADDLENLP
from .paddlenlp_files import TRAINING_ARGS_NAME, PaddleNLPCheckpoint, read_checkpoint

logger = logging.getLogger(__name__)

PLM_PREFIX = "plm."
SOFT_HEAD_PREFIX = "verbalizer.head."
# PaddleNLP keeps references to tensors it also saves elsewhere: the template's copy of the word
# embeddings and the soft head's vocabulary-sized bias left from the LM head it copied.
SHARED_KEYS = ("template.word_embeddings.weight", "verbalizer.head.decoder_bias")
SOFT_EMBEDDINGS = "template.soft_embeddings.weight"
PADDLENLP_MAX_SEQ_LENGTH = 512


@dataclass
class ImportedModel:
    """A PaddleNLP checkpoint read into the arguments of ``PromptClassifier.from_task`` (with its PLM's
    weights already set) and its prompt weights (soft template, soft head) to set once the model is built."""

    arguments: Dict[str, Any]
    state: Dict[str, np.ndarray]
    where: Path

    def set_prompt_state(self, model: paddle.nn.Layer) -> None:
        """Give a built ``PromptModel`` PaddleNLP's soft tokens and soft head."""
        ours = model.state_dict()
        for name, value in self._renamed(model).items():
            if name not in ours or list(ours[name].shape) != list(value.shape):
                found = list(ours[name].shape) if name in ours else "nothing"
                raise BundleError(f"{self.where}: PaddleNLP's weights of shape {list(value.shape)} for {name}, "
                                  f"the model has {found}")
            ours[name].set_value(paddle.to_tensor(value.astype("float32")))

    def _renamed(self, model: paddle.nn.Layer) -> Dict[str, np.ndarray]:
        """PaddleNLP's prompt weights under our names."""
        state = self.state
        renamed: Dict[str, np.ndarray] = {}
        if SOFT_HEAD_PREFIX + "decoder.weight" in state:
            if model.verbalizer.num_masks != 1:
                raise BundleError(f"{self.where}: a SoftVerbalizer with {model.verbalizer.num_masks} masks "
                                  "(PaddleNLP's soft verbalizer reads one)")
            renamed["verbalizer.weight"] = state[SOFT_HEAD_PREFIX + "decoder.weight"][None]
            renamed["verbalizer.bias"] = state[SOFT_HEAD_PREFIX + "decoder.bias"][None]
        if SOFT_EMBEDDINGS in state:
            renamed["soft_prompt.embedding"] = state[SOFT_EMBEDDINGS][1:]
        return renamed


def read_paddlenlp_model(
    directory: Union[str, Path],
    base_model: Optional[str] = None,
    trust_pickle: bool = False,
    max_seq_length: Optional[int] = None,
    verbalizer: Optional[VerbalizerArg] = None,
) -> ImportedModel:
    """What a classifier is built from, read from PaddleNLP's few-shot checkpoint ``directory``.

    ``base_model`` is the ``--model_name_or_path`` it was trained from (its architecture; PaddleNLP
    does not save it beside the weights), or ``directory/plm`` when it was saved with ``save_plm``.
    ``max_seq_length`` defaults to the one in ``training_args.bin``. ``verbalizer`` overrides the
    ``"paddlenlp"`` kind's options where the model was trained with non-default ones.
    """
    checkpoint = read_checkpoint(directory)
    if not trust_pickle:
        raise BundleError(
            f"{checkpoint.weights}: PaddleNLP saves weights as a pickle, and loading a pickle can run code "
            "hidden in it; fewshot reads it only with --trust-pickle (trust_pickle=True), for a checkpoint "
            "you trust. The imported classifier is written as safetensors, so this is needed once"
        )
    state = _read_state(checkpoint.weights)
    encoders = [key for key in state if key.startswith("template.encoder_list.")]
    if encoders:
        raise BundleError(f"{checkpoint.weights}: the template's soft tokens have an encoder ({encoders[0]}); "
                          "fewshot imports soft tokens without one (PaddleNLP's LSTM and MLP soft encoders "
                          "fail on Paddle 3.3)")
    if any(key.startswith("template.") for key in state) and checkpoint.template_class != "SoftTemplate":
        raise BundleError(f"{checkpoint.weights}: trained template parameters for a {checkpoint.template_class}")
    base = base_model or _saved_plm(checkpoint)
    plm, tokenizer = load_pretrained(base)
    if checkpoint.has_tokenizer:
        tokenizer = load_checkpoint_tokenizer(checkpoint.directory)
    soft = any(key.startswith(SOFT_HEAD_PREFIX) for key in state)
    _load_plm_state(plm, state, checkpoint, soft)
    _, task = build_task(checkpoint.label_words)
    spec = VerbalizerSpec.parse(verbalizer if verbalizer is not None else ("soft" if soft else "paddlenlp"))
    arguments = dict(
        model=base, task=task, label_words=checkpoint.label_words, template=checkpoint.template,
        verbalizer=spec.config(), max_seq_length=max_seq_length or _trained_max_seq_length(checkpoint),
        plm=plm, tokenizer=tokenizer, template_style=PADDLENLP.name,
    )
    prompt_state = {key: value for key, value in state.items()
                    if key.startswith(("template.", SOFT_HEAD_PREFIX)) and key not in SHARED_KEYS}
    return ImportedModel(arguments, prompt_state, checkpoint.directory)


def load_checkpoint_tokenizer(directory: Path) -> Any:
    """The tokenizer from the files PaddleNLP's trainer saved in the checkpoint."""
    from paddlenlp.transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory))
    except Exception as exc:  # PaddleNLP raises many types for a bad tokenizer directory
        raise BundleError(f"{directory}: cannot load the tokenizer files ({type(exc).__name__}: {exc})") from None


def _read_state(path: Path) -> Dict[str, np.ndarray]:
    try:
        state = paddle.load(str(path), return_numpy=True)
    except Exception as exc:  # a corrupt or foreign pickle raises anything
        raise BundleError(f"{path}: cannot read the weights ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise BundleError(f"{path}: expected a state dict, found {type(state).__name__}")
    return {str(key): np.asarray(value) for key, value in state.items()}


def _saved_plm(checkpoint: PaddleNLPCheckpoint) -> str:
    plm_dir = checkpoint.directory / "plm"
    if (plm_dir / "config.json").is_file():
        return str(plm_dir)
    raise BundleError(f"{checkpoint.directory}: PaddleNLP saved no model configuration here (no plm/config.json); "
                      "give the base model it was trained from (--model, as its --model_name_or_path)")


def _trained_max_seq_length(checkpoint: PaddleNLPCheckpoint) -> int:
    path = checkpoint.directory / TRAINING_ARGS_NAME
    length = None
    if path.is_file():
        try:
            length = getattr(paddle.load(str(path)), "max_seq_length", None)
        except Exception:  # an unreadable training_args.bin only loses the default
            length = None
    if not isinstance(length, int) or length < 1:
        logger.info("%s: no max_seq_length recorded; using PaddleNLP's default %d", checkpoint.directory,
                    PADDLENLP_MAX_SEQ_LENGTH)
        return PADDLENLP_MAX_SEQ_LENGTH
    return length


def _load_plm_state(plm: paddle.nn.Layer, state: Dict[str, np.ndarray], checkpoint: PaddleNLPCheckpoint,
                    soft: bool) -> None:
    """Set the PLM's weights; with a soft verbalizer its LM head transform comes from the verbalizer's head."""
    weights = {key[len(PLM_PREFIX):]: value for key, value in state.items() if key.startswith(PLM_PREFIX)}
    if soft:
        for name in ("transform.weight", "transform.bias", "layer_norm.weight", "layer_norm.bias"):
            weights[f"cls.predictions.{name}"] = state[SOFT_HEAD_PREFIX + name]
    expected = plm.state_dict()
    unused_decoder = ("cls.predictions.decoder", "cls.predictions.decoder_bias") if soft else ()
    missing = [k for k in expected if k not in weights and not k.startswith(unused_decoder)]
    if missing:
        raise BundleError(f"{checkpoint.weights}: no weights for {', '.join(missing[:3])} of the base model; "
                          "is --model the model it was trained from?")
    for key, value in weights.items():
        if key not in expected:
            continue
        if list(expected[key].shape) != list(value.shape):
            raise BundleError(f"{checkpoint.weights}: plm.{key} has shape {list(value.shape)}, the base model "
                              f"{list(expected[key].shape)}; is --model the model it was trained from?")
        expected[key].set_value(paddle.to_tensor(value.astype(expected[key].numpy().dtype)))
