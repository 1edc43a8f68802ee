"""A PNG of the subgraph behind a user's explanations (networkx + matplotlib, Agg backend).

Nodes are laid out in columns by their position along the paths -- the user, the items the
user took, the entities or other users that link them on, the recommended items -- so every
path reads left to right. Edges carry their relation's short name; reversed relations are
drawn in the direction the path walks them and labelled as the graph names them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path as FilePath

import networkx as nx

from kgrec.graph.container import ITEM, USER
from kgrec.io import atomic_path

from kgrec.explain.names import NodeNames
from kgrec.explain.paths import Explanation, relation_label

_COLOURS = {"user": "#4C72B0", "seen": "#55A868", "entity": "#C9A227", "other user": "#8172B2", "recommended": "#C44E52"}


def explanation_graph(explanations: list[Explanation], names: NodeNames) -> nx.DiGraph:
    """The union of the explanations' paths as a directed graph with ``layer``/``role`` attributes."""
    graph = nx.DiGraph()
    recommended = {e.item for e in explanations}
    for exp in explanations:
        graph.add_node(exp.item, layer=3, role="recommended", label=names.name(exp.item))
        graph.add_node(exp.user, layer=0, role="user", label=names.name(exp.user))
        for path in exp.paths:
            for pos, node in enumerate(path.nodes[1:-1], start=1):
                if node in recommended or node == exp.user:
                    continue
                kind = names.kind(node)
                role = "seen" if pos == 1 else ("other user" if kind == USER else ("seen" if kind == ITEM else "entity"))
                if node not in graph or graph.nodes[node]["layer"] > pos:
                    graph.add_node(node, layer=pos, role=role, label=names.name(node))
            for src, rel, dst in path.edges():
                short, _ = relation_label(rel)
                graph.add_edge(src, dst, label=short)
    return graph


def draw_explanations(explanations: list[Explanation], names: NodeNames, out: FilePath, title: str | None = None) -> FilePath:
    """Draw the paths of ``explanations`` (usually one user's) to the PNG file ``out``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    graph = explanation_graph(explanations, names)
    if graph.number_of_nodes() == 0:
        graph.add_node(0, layer=0, role="user", label="(nothing to explain)")
    pos = nx.multipartite_layout(graph, subset_key="layer", align="vertical")
    per_column = max(sum(1 for _, d in graph.nodes(data=True) if d["layer"] == k) for k in range(4))
    fig, ax = plt.subplots(figsize=(14, max(4.0, 0.7 * per_column + 2)))
    colours = [_COLOURS[d["role"]] for _, d in graph.nodes(data=True)]
    nx.draw_networkx_edges(graph, pos, ax=ax, arrows=True, arrowsize=12, edge_color="#888888", node_size=600, connectionstyle="arc3,rad=0.05")
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=colours, node_size=600, alpha=0.9)
    labels = {n: "\n".join(textwrap.wrap(d["label"], 22)[:2]) for n, d in graph.nodes(data=True)}
    above = {n: (x, y + 0.035) for n, (x, y) in pos.items()}  # labels above the discs, not on them
    nx.draw_networkx_labels(graph, above, labels=labels, ax=ax, font_size=7, verticalalignment="bottom")
    nx.draw_networkx_edge_labels(graph, pos, edge_labels=nx.get_edge_attributes(graph, "label"), ax=ax, font_size=6, label_pos=0.5)
    for role, colour in _COLOURS.items():
        ax.scatter([], [], c=colour, label=role)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=len(_COLOURS), frameon=False, fontsize=8)
    ax.set_title(title or "Why these recommendations", fontsize=11)
    ax.axis("off")
    fig.tight_layout()
    out = FilePath(out)
    with atomic_path(out, ".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return out
