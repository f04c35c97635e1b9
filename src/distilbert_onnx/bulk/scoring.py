"""Score a chunk of rows with a loaded pipeline so that one bad row never costs its neighbours.

Rows already known to be bad (a Problem from the column checks) are left out. The rest go to the
pipeline as one list, which it checks whole before running the model; if it refuses the list
(TypeError / ValueError), the list is halved until the refused rows are found alone, so good rows
are still scored in full batches and each bad row gets the pipeline's own message.
"""

from __future__ import annotations

from .columns import Problem


def score(pipe, inputs: list, batch_size: int, options: dict) -> list:
    """The result of each input, or its Problem, in input order."""
    results = list(inputs)
    good = [index for index, item in enumerate(inputs) if not isinstance(item, Problem)]
    for index, result in zip(good, _score_all([inputs[i] for i in good], pipe, batch_size, options)):
        results[index] = result
    return results


def _score_all(items: list, pipe, batch_size: int, options: dict) -> list:
    if not items:
        return []
    if len(items) == 1:
        try:
            return [next(pipe(iter(items), batch_size=batch_size, **options))]
        except (TypeError, ValueError) as exc:
            return [Problem(str(exc))]
    try:
        return pipe(items, batch_size=batch_size, **options)
    except (TypeError, ValueError):
        middle = len(items) // 2
        return _score_all(items[:middle], pipe, batch_size, options) + _score_all(items[middle:], pipe, batch_size, options)
