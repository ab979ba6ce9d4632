"""The tables `make bench` prints: one row per metric and peer, each value also as a
ratio to the reference peers measured in the same run."""

from __future__ import annotations

Results = dict[str, dict[str, float | None]]


def ratio_table(
    first: str, metrics: list[tuple[str, str, str]], results: Results, refs: list[str]
) -> str:
    """`metrics`: (key, title, format) per metric, in order."""
    w = max(len("peer"), *(len(peer) for peer in results))
    head = f"| {first:<36} | {'peer':<{w}} | {'value':>9} | " + " | ".join(
        f"{'x ' + r:>16}" for r in refs
    )
    head += " |"
    lines = [head, "|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|"]
    for key, title, fmt in metrics:
        for peer, row in results.items():
            value = row.get(key)
            cells = []
            for ref in refs:
                base = results.get(ref, {}).get(key)
                cells.append(f"{value / base:>16.2f}" if value and base else f"{'-':>16}")
            shown = fmt.format(value) if value is not None else "-"
            row_head = f"| {title:<36} | {peer:<{w}} | {shown:>9} | "
            lines.append(row_head + " | ".join(cells) + " |")
            title = ""
    return "\n".join(lines)
