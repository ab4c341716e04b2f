"""How sparse can a decoder be? Lottery tickets by iterative magnitude pruning.

- :mod:`neuroseq.pruning.masks`: masks on any torch network (``torch.nn.utils.prune``).
- :mod:`neuroseq.pruning.tasks`: what is trained and scored (an MLP on rows, or a
  registered sequence decoder through the decoders' own training loop).
- :mod:`neuroseq.pruning.lottery`: the search, :func:`find_tickets`.
- :mod:`neuroseq.pruning.analysis`: ``run_pruning(session) -> pruning.nc``.
"""

from neuroseq.pruning.lottery import INITS, TicketCurve, find_tickets
from neuroseq.pruning.tasks import ArrayTask, MLPNet, SequenceTask

__all__ = ["INITS", "ArrayTask", "MLPNet", "SequenceTask", "TicketCurve", "find_tickets"]
