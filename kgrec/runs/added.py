"""Items added to a run after training (``kgrec add-items``), kept in ``RUN/added_items/``.

::

    added.json              how many items, and how their missing ID embedding was filled
    items.csv               id, label, text (what BERT encoded), description, iri
    links.csv               item, relation, node_type, node_id, outgoing: their edges to the graph
    features.safetensors    their BERT features, so that loading needs no text model

Nothing here is a weight: a loaded run embeds the items again with its trained model (and the
run's weights are never touched). The folder is written whole or not at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from kgrec.coldstart.items import ColdItems
from kgrec.errors import KgrecError
from kgrec.explain.names import NodeNames
from kgrec.io import atomic_folder

ADDED_FOLDER = "added_items"


@dataclass
class AddedBatch:
    """One call's worth of added items: what was read, and their text features (None: no text model)."""

    items: ColdItems
    features: torch.Tensor | None
    has_text: torch.Tensor | None

    def without(self, ids: set[str]) -> "AddedBatch | None":
        """This batch less the items ``ids`` (None when nothing is left)."""
        keep = [k for k, i in enumerate(self.items.ids) if i not in ids]
        if len(keep) == len(self.items.ids):
            return self
        if not keep:
            return None
        rows = torch.as_tensor(keep, dtype=torch.long)
        pick = (lambda t: None if t is None else t[rows.to(t.device)])  # noqa: E731
        return AddedBatch(self.items.keep(keep), pick(self.features), pick(self.has_text))


def has_added(run_dir: Path) -> bool:
    return (Path(run_dir) / ADDED_FOLDER).is_dir()


def write_added(run_dir: Path, batches: list[AddedBatch], names: NodeNames, id_init: str) -> Path:
    """Write every added batch to ``run_dir/added_items/`` (replacing what was there), atomically."""
    folder = Path(run_dir) / ADDED_FOLDER
    items, links, feats, flags = [], [], [], []
    count = 0
    for batch in batches:
        cold = batch.items
        n = len(cold)
        items.append(
            pd.DataFrame(
                {
                    "id": cold.ids,
                    "label": cold.labels,
                    "text": cold.texts,
                    "description": cold.descriptions or [None] * n,
                    "iri": cold.iris or [None] * n,
                }
            )
        )
        link = cold.links.copy()
        link["item"] = [cold.ids[i] for i in link["item"]]
        link["node_type"] = [names.kind(node) for node in link["node"]]
        link["node_id"] = [names.ids[node] for node in link["node"]]
        links.append(link.drop(columns="node"))
        if batch.features is not None:
            feats.append(batch.features.float().cpu())
            flags.append(batch.has_text.cpu())
        count += n
    with atomic_folder(folder) as tmp:
        pd.concat(items, ignore_index=True).to_csv(tmp / "items.csv", index=False)
        pd.concat(links, ignore_index=True).to_csv(tmp / "links.csv", index=False)
        if feats:
            tensors = {"features": torch.cat(feats).contiguous(), "has_text": torch.cat(flags).to(torch.uint8).contiguous()}
            save_file(tensors, str(tmp / "features.safetensors"))
        (tmp / "added.json").write_text(json.dumps({"id_init": id_init, "items": count}, indent=2) + "\n")
    return folder


def read_added(run_dir: Path, names: NodeNames) -> tuple[list[AddedBatch], str]:
    """The added items of ``run_dir`` as one batch, linked to the nodes ``names`` describes."""
    folder = Path(run_dir) / ADDED_FOLDER
    try:
        meta = json.loads((folder / "added.json").read_text(encoding="utf-8"))
        items = pd.read_csv(folder / "items.csv", dtype={"id": str}, keep_default_na=False)
        links = pd.read_csv(folder / "links.csv", dtype={"item": str, "node_id": str}, keep_default_na=False)
        tensors = load_file(str(folder / "features.safetensors")) if (folder / "features.safetensors").is_file() else {}
    except (OSError, ValueError, KeyError) as e:
        raise KgrecError(f"damaged added-items folder ({e}); delete it and run `kgrec add-items` again", path=folder) from None
    position = {iid: k for k, iid in enumerate(items["id"])}
    node_of = {(t, key): n for n, (t, key) in enumerate(zip(names.types, names.ids))}
    try:
        nodes = [node_of[(t, key)] for t, key in zip(links["node_type"], links["node_id"])]
    except KeyError as e:
        raise KgrecError(f"an added item links to {e.args[0]}, which the run's graph does not have", path=folder / "links.csv") from None
    frame = pd.DataFrame(
        {
            "item": [position[i] for i in links["item"]],
            "relation": links["relation"].astype(str),
            "node": nodes,
            "outgoing": links["outgoing"].astype(str).str.lower().eq("true"),
        }
    )

    def column(name: str) -> list[str | None]:  # folders written before a column existed lack it
        values = items[name] if name in items.columns else [""] * len(items)
        return [v if isinstance(v, str) and v else None for v in values]

    cold = ColdItems(
        items["id"].tolist(), column("label"), column("text"), frame, descriptions=column("description"), iris=column("iri")
    )
    features, has_text = tensors.get("features"), tensors.get("has_text")
    return [AddedBatch(cold, features, None if has_text is None else has_text.bool())], str(meta.get("id_init", "mean"))


__all__ = ["ADDED_FOLDER", "AddedBatch", "has_added", "read_added", "write_added"]
