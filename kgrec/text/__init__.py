"""Text features: node labels and descriptions -> BERT embeddings (batched, cached by content hash)."""

from kgrec.text.encoder import TextEncoder
from kgrec.text.features import build_node_features, node_text

__all__ = ["TextEncoder", "build_node_features", "node_text"]
