"""Evaluation folders: files plus one tab-separated table naming them, no header.

speech: `*.wav` plus `truth.tsv` (file name, ..., reference text);
look-and-tell: images plus `cases.tsv` (file name, question, accepted words split by `|`).
"""

from pathlib import Path

from glasses.device.errors import BadInput


def read_table(folder: str | Path, table: str, what: str, columns: int
               ) -> list[tuple[Path, list[str]]]:
    """(file path, stripped columns) for every non-empty line of `folder`/`table`.

    `what` describes the folder for messages ("a speech set is *.wav plus truth.tsv: ...").
    Raises BadInput naming the file (and line) for a missing folder or table, a line with
    fewer than `columns` columns, a listed file that does not exist, or an empty table.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"{folder}: no such folder ({what})")
    path = folder / table
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file ({what})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: cannot read ({e})") from None
    rows: list[tuple[Path, list[str]]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split("\t")]
        if len(cells) < columns:
            raise BadInput(f"{path}:{number}: expected {columns} tab-separated columns "
                           f"({what}), got {line.strip()[:60]!r}")
        file = folder / cells[0]
        if Path(cells[0]).is_absolute() or ".." in Path(cells[0]).parts:
            raise BadInput(f"{path}:{number}: {cells[0]!r}: files are named relative to "
                           f"{folder}, inside it")
        if not cells[0] or not file.is_file():
            raise BadInput(f"{path}:{number}: {cells[0]!r}: no such file in {folder}")
        rows.append((file, cells))
    if not rows:
        raise BadInput(f"{path}: lists nothing")
    return rows
