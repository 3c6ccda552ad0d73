"""``cnnkit diagram --format ascii``: the captured graph, one layer per line (capability A8).

Like seed 000's ASCII figures (§4.3, §8.3), but drawn from the model: each layer is a ``●`` on a
vertical lane; a tensor used by several layers forks a new lane (``├─╮``), and a layer that
reads several lanes (a residual add, a concatenation) joins them (``├─┘``), so branches and
skip connections stay visible for any DAG.
"""

from __future__ import annotations

from cnnkit.analysis.render._format import label, shape_text
from cnnkit.analysis.summary import Summary

INPUT = -1


def _consumers(summary: Summary) -> dict[int, list[int]]:
    consumers: dict[int, list[int]] = {INPUT: []}
    for index in range(len(summary.layers)):
        consumers[index] = []
    for index, row in enumerate(summary.layers):
        for source in row.inputs:
            consumers[source].append(index)
    return consumers


def _connector(lanes: list[int | None], column: int, joins: dict[int, bool]) -> str:
    """The line drawn above a node at ``column``: a segment from each lane in ``joins`` (lane ->
    True when it ends here) to the node's column."""
    left = min([column, *joins])
    right = max([column, *joins])
    width = max(len(lanes), column + 1)
    cells = []
    for x in range(width):
        active = x < len(lanes) and lanes[x] is not None
        if x == column:
            takes_over = active and x not in joins
            from_left, from_right = left < x, right > x
            if takes_over:
                char = "┼" if from_left and from_right else ("├" if from_right else "┤")
            else:
                char = "┬" if from_left and from_right else ("╭" if from_right else "╮")
        elif x in joins:
            ends = joins[x]
            if x < column:
                char = ("└" if x == left else "┴") if ends else "├"
            else:
                char = ("┘" if x == right else "┴") if ends else "┤"
        elif left < x < right:
            char = "┼" if active else "─"
        else:
            char = "│" if active else " "
        fill = "─" if left <= x < right else " "
        cells.append(char + fill)
    return "".join(cells).rstrip()


def render_ascii(summary: Summary) -> str:
    """The graph of ``summary.layers`` with each line labelled name, type and output shape."""
    consumers = _consumers(summary)
    remaining = {node: list(users) for node, users in consumers.items()}
    lanes: list[int | None] = []
    drawn: list[tuple[str, str]] = []
    nodes = [INPUT, *range(len(summary.layers))]
    for node in nodes:
        sources = [] if node == INPUT else list(dict.fromkeys(summary.layers[node].inputs))
        ending = {}
        for source in sources:
            remaining[source].remove(node)
            ending[lanes.index(source)] = not remaining[source]
        taken = [x for x, ends in sorted(ending.items()) if ends]
        if taken:
            column = taken[0]
        elif None in lanes:
            column = lanes.index(None)
        else:
            column = len(lanes)
        joins = {x: ends for x, ends in ending.items() if x != column}
        if joins or (ending and column not in ending):
            drawn.append((_connector(lanes, column, joins or ending), ""))
        for x, ends in ending.items():
            if ends:
                lanes[x] = None
        if column == len(lanes):
            lanes.append(None)
        lanes[column] = node if remaining[node] else None
        cells = ["● " if x == column else ("│ " if lane is not None else "  ")
                 for x, lane in enumerate(lanes)]  # fmt: skip
        if column >= len(cells):
            cells.append("● ")
        drawn.append(("".join(cells), _text(summary, node)))
        while lanes and lanes[-1] is None:
            lanes.pop()
    width = max(len(graph.rstrip()) for graph, _ in drawn)
    lines = [f"{graph.rstrip():<{width}}  {text}".rstrip() for graph, text in drawn]
    return "\n".join(lines) + "\n"


def _text(summary: Summary, node: int) -> str:
    if node == INPUT:
        return f"input  {shape_text(summary.input_shape)}"
    row = summary.layers[node]
    shape = shape_text(row.output_shape)
    symbol = label(row)
    if symbol != row.type:  # an operator: layer1.0.add (+)
        return f"{row.name} ({symbol})  {shape}"
    if row.name.rsplit(".", 1)[-1] == row.type:  # a function named after itself: flatten
        return f"{row.name}  {shape}"
    return f"{row.name}  {row.type}  {shape}"
