"""Feeding the training loop: micro-batches built in DataLoader workers, off the loop's own thread.

The batch of micro-step ``m`` on rank ``r`` is a pure function of ``(seed, m, r)`` (``fetch``, the trainer's
:func:`~vidiff.training.trainer.batch_for_step`): so the data do not depend on the number of workers, and a resumed
run starts the loader at its checkpoint's micro-step and sees what an uninterrupted run would have seen (the
loader's position is the step the checkpoint holds). Decoding, resizing and rendering happen in the workers;
each batch says how many unreadable items it skipped (``"skipped"``), so the count survives worker processes.
"""

from __future__ import annotations

from typing import Callable

import torch


class MicroBatches(torch.utils.data.Dataset):
    """Item ``m``: rank ``rank``'s micro-batch of micro-step ``m`` (``fetch(dataset, m, rank, world, size, seed)``)."""

    def __init__(self, dataset, fetch: Callable, rank: int, world: int, size: int, seed: int):
        self.dataset, self.fetch = dataset, fetch
        self.rank, self.world, self.size, self.seed = rank, world, size, seed

    def __len__(self) -> int:
        return 2**62  # indexed by micro-step; the sampler says which

    def __getitem__(self, m: int) -> dict:
        return self.fetch(self.dataset, m, self.rank, self.world, self.size, self.seed)


def _one_thread(_worker: int) -> None:
    torch.set_num_threads(1)  # workers decode and resize; the training process keeps the cores' math threads


def micro_batches(dataset, fetch: Callable, rank: int, world: int, size: int, seed: int, start: int, stop: int,
                  workers: int = 0):
    """An iterator over the micro-batches ``start .. stop - 1`` of this rank, built by ``workers`` processes
    (0: in this process), each prefetching two ahead."""
    data = MicroBatches(dataset, fetch, rank, world, size, seed)
    if workers == 0:
        return (data[m] for m in range(start, stop))
    loader = torch.utils.data.DataLoader(data, batch_size=None, sampler=range(start, stop), num_workers=workers,
                                         prefetch_factor=2, worker_init_fn=_one_thread, persistent_workers=False)
    return iter(loader)


__all__ = ["MicroBatches", "micro_batches"]
