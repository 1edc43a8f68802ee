"""Data-parallel training over several processes: ``torchrun`` and DistributedDataParallel.

``torchrun --nproc_per_node N -m kgrec train ...`` starts N copies of the command. Each finds
its place in the variables torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) and joins one process group: NCCL with one GPU per process
(``cuda:LOCAL_RANK``), gloo on the CPU. Without those variables, or with ``WORLD_SIZE=1``, a
:class:`World` of one process makes every helper here a no-op, so single-process training is
exactly what it was.

How the work is shared, and why:

* Every process holds the whole model and the whole training graph. Full-graph propagation
  needs every node's embedding at every step, so the graph cannot be split, only the training
  pairs. DistributedDataParallel averages the gradients after each backward pass, so the
  replicas stay identical (checked once, at the end of training).
* Each epoch shuffles the training pairs with the shared seed -- the same permutation in every
  process -- and process ``r`` takes every N-th pair from position ``r``: the epoch is split,
  not repeated (padded by wrapping around so every process takes the same number of steps;
  a process with one step more would wait for the others forever).
* ``train.batch_size`` is **per process**: one step consumes ``N x batch_size`` pairs and an
  epoch takes N times fewer steps. That is where the speed-up comes from. A step's full-graph
  forward and backward pass costs every process the same whatever its share of the batch, so
  splitting ``batch_size`` into N parts would reproduce the single-process optimisation and
  save almost nothing. Divide ``train.batch_size`` by N yourself to reproduce a single-GPU
  run's optimisation, or raise ``train.lr`` with the larger global batch.
* Negatives are sampled per process, from a generator seeded by (seed, rank, epoch): distinct
  across processes, and the same again when a run is resumed.
* Rank 0 alone evaluates, selects, logs and writes files. The others receive its early-stopping
  decision after every epoch (so all stop together) and its results at the end. They wait for
  it inside a collective, so an evaluation must end within the process group's timeout (torch's
  default: 10 minutes with NCCL, 30 with gloo).

A failing process ends the run rather than hanging it. It prints its error (naming its rank,
:func:`rank_label`) and exits at once without tearing down the process group (:func:`leave`);
the others' next collective fails on the closed connection, and they exit with a one-line
message that points at the first one. torchrun also stops the remaining processes when one
exits with an error.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from kgrec.device import resolve_device
from kgrec.errors import KgrecError

#: What torchrun sets besides WORLD_SIZE; all are needed to join the group.
_TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _env_int(name: str, environ) -> int:
    try:
        return int(environ[name])
    except ValueError:
        raise KgrecError(f"environment variable {name}={environ[name]!r} is not an integer") from None


def torchrun_env(environ=None) -> tuple[int, int, int] | None:
    """``(rank, world_size, local_rank)`` when launched by torchrun with several processes, else None.

    Keyed on ``WORLD_SIZE``: a stray ``RANK`` from some other tool must not turn an ordinary
    run into a distributed one. With ``WORLD_SIZE > 1`` the other variables must all be there.
    """
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ or _env_int("WORLD_SIZE", environ) == 1:
        return None
    size = _env_int("WORLD_SIZE", environ)
    missing = [k for k in _TORCHRUN_VARIABLES if k not in environ]
    if missing:
        raise KgrecError(
            f"WORLD_SIZE={size} but {', '.join(missing)} not set: launch several processes with "
            "`torchrun --nproc_per_node N -m kgrec train ...`"
        )
    rank, local_rank = _env_int("RANK", environ), _env_int("LOCAL_RANK", environ)
    if size < 1 or not 0 <= rank < size or local_rank < 0:
        raise KgrecError(f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={size}, LOCAL_RANK={local_rank}")
    return rank, size, local_rank


def env_rank(environ=None) -> int:
    """This process's rank under torchrun, 0 otherwise (for output only rank 0 should print)."""
    env = torchrun_env(environ)
    return 0 if env is None else env[0]


def rank_label(environ=None) -> str:
    """``" (rank 1 of 2)"`` inside a multi-process run, else ``""``: for error messages."""
    try:
        env = torchrun_env(environ)
    except KgrecError:
        return ""
    return "" if env is None else f" (rank {env[0]} of {env[1]})"


class _Replica(nn.parallel.DistributedDataParallel):
    """DistributedDataParallel that still answers the wrapped recommender's own methods.

    The training step calls ``model.user_item`` and ``model.kg_score`` besides the forward;
    plain DDP only forwards ``__call__``. Parameters used through those methods (the relation
    embeddings of the KG loss) still get their gradients all-reduced: see :meth:`World.wrap`.
    """

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def end_process_group() -> None:
    """Destroy the default process group without the gloo shutdown deadlock.

    A gloo group's destructor joins its worker threads while holding the GIL; a worker still
    releasing a finished collective needs the GIL too (pytorch/pytorch#56297). So: first let
    the garbage collector free any DDP replica still waiting in a reference cycle (a reducer
    destroyed after its group hangs the same way), then give the workers a moment, then
    destroy. Seen to deadlock on the failure path, where DDP's last all-reduce was still being
    released, and in the tests, where a replica outlived its group.
    """
    import gc

    gc.collect()
    time.sleep(0.1)
    dist.destroy_process_group()


def replica(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel (a process group must be running).

    ``static_graph=True`` because the relation embeddings are used outside ``forward`` (by the
    KG loss) or not at all (KG loss off). With ``find_unused_parameters`` DDP would mark them
    unused at the end of the forward and then fail when the KG loss's gradient arrives ("marked
    as ready twice"); with neither, it would wait for a gradient that never comes. A static
    graph records in the first step which parameters receive gradients; that set is the same
    at every step of a run.
    """
    device_ids = [device.index] if device.type == "cuda" else None
    return _Replica(model, device_ids=device_ids, static_graph=True)


@dataclass(frozen=True)
class World:
    """This process's place among the training processes; one process by default."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def parallel(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that evaluates, logs and writes files."""
        return self.rank == 0

    def main_only(self, log: Callable) -> Callable:
        """``log`` on rank 0, a no-op elsewhere: N copies of every line help nobody."""
        return log if self.is_main else (lambda *args, **kwargs: None)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the training step calls: ``model`` itself, or a DDP :func:`replica` of it."""
        return replica(model, self.device) if self.parallel else model

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This process's share of an epoch's permutation: every ``size``-th entry from ``rank``.

        Padded by wrapping around to a multiple of ``size``, so every process gets the same
        number of pairs, hence of steps (at most ``size - 1`` pairs are seen twice).
        """
        if not self.parallel:
            return order
        per_rank = -(-order.numel() // self.size)
        padded = order[torch.arange(per_rank * self.size, device=order.device) % order.numel()]
        return padded[self.rank :: self.size]

    def sampling_generator(self, generator: torch.Generator) -> torch.Generator:
        """The generator for negative sampling: ``generator`` itself in one process.

        Several processes share ``generator`` for the epoch permutation, which must be the same
        everywhere, so negatives need a generator of their own (seeded by :meth:`seed_epoch`).
        """
        return torch.Generator(device=generator.device) if self.parallel else generator

    def seed_epoch(self, sampling: torch.Generator, seed: int, epoch: int) -> None:
        """Seed this process's sampling generator for ``epoch`` from (seed, rank, epoch).

        Per epoch rather than once, so a resumed run draws the same negatives without
        checkpointing every process's generator state.
        """
        if self.parallel:
            state = np.random.SeedSequence([seed % 2**64, self.rank, epoch]).generate_state(1, dtype=np.uint64)[0]
            sampling.manual_seed(int(state))

    def mean_loss(self, total: torch.Tensor, steps: int) -> float:
        """The epoch's mean step loss over every process: all processes see the same number."""
        if not self.parallel:
            return float(total) / max(steps, 1)
        both = torch.stack([total.detach().double(), torch.tensor(float(steps), dtype=torch.float64, device=total.device)])
        dist.all_reduce(both)
        return float(both[0]) / max(float(both[1]), 1.0)

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` in every process (the early-stopping decision)."""
        if not self.parallel:
            return flag
        value = torch.tensor([int(flag)], device=self.device)
        dist.broadcast(value, src=0)
        return bool(value.item())

    def share(self, obj):
        """Rank 0's ``obj`` (picklable; only kgrec's own values travel) in every process."""
        if not self.parallel:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
        return box[0]

    def check_in_sync(self, model: nn.Module) -> None:
        """Raise if the replicas' weights differ (a bug: DDP keeps them bit for bit equal).

        Compares a float64 sum and absolute sum of every parameter across processes: one small
        all-gather, once per run.
        """
        if not self.parallel:
            return
        fingerprint = torch.stack(
            [torch.stack([p.detach().double().sum(), p.detach().double().abs().sum()]) for p in model.parameters()]
        )
        gathered = [torch.empty_like(fingerprint) for _ in range(self.size)]
        dist.all_gather(gathered, fingerprint)
        differ = [r for r in range(1, self.size) if not torch.equal(gathered[0], gathered[r])]
        if differ:
            raise RuntimeError(f"model replicas out of sync: rank(s) {differ} hold other weights than rank 0")


@contextmanager
def launch(device: str | torch.device = "auto") -> Iterator[World]:
    """This process's :class:`World`; under torchrun, a process group for the block's duration.

    ``device`` is ``train.device``. With several processes on CUDA each one takes
    ``cuda:LOCAL_RANK`` (NCCL), whatever GPU index the setting names; on the CPU they use gloo.
    A process group that already exists (started by the caller's own script) is used and left
    open.
    """
    device = resolve_device(device)
    env = torchrun_env()
    if env is None:
        yield World(device=device)
        return
    rank, size, local_rank = env
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise KgrecError(
                f"LOCAL_RANK {local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                "start at most that many processes per node (torchrun --nproc_per_node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    owned = not dist.is_initialized()
    if owned:
        try:
            dist.init_process_group(backend, rank=rank, world_size=size)
        except (RuntimeError, ValueError) as e:
            raise KgrecError(f"could not join the {backend} process group as rank {rank} of {size}: {e}") from None
    try:
        yield World(rank=rank, size=size, local_rank=local_rank, device=device)
    except RuntimeError as e:
        if not _peer_lost(e):
            raise
        # the consequence, not the cause: one line, so the failing process's message stands out
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise KgrecError(f"another training process failed first (its own error names its rank); here: {first}") from None
    if owned:  # success only: after a failure the group is abandoned, see leave()
        end_process_group()


def abandoned() -> bool:
    """Whether a process group is still open when the command is over: only after a failure."""
    return dist.is_available() and dist.is_initialized()


def leave(code: int) -> int:
    """Exit status ``code``; if a failure abandoned a process group, end the process with it now.

    After a failure :func:`launch` does not destroy the group: a peer may be gone or waiting
    in a collective, and the destructor can then wait forever (for the collective, or for the
    GIL). Ordinary interpreter shutdown would run that destructor anyway, so the command line
    calls this once it has printed the error: ``os._exit`` skips it, the sockets close, and the
    other processes' collectives fail at once instead of hanging.
    """
    if abandoned():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _peer_lost(error: RuntimeError) -> bool:
    """Whether a collective failed because another process went away (gloo says "by peer")."""
    return isinstance(error, dist.DistError) or "by peer" in str(error) or "Broken pipe" in str(error)
