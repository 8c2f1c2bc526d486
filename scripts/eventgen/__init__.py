"""A deterministic, coherent stream of activity events (SPEC section 3).

Pure and network-free, so the simulator, benchmarks and tests share it.
A small world of students, teachers, classes, lessons, quizzes and forum
threads evolves over a time window; every step emits one event whose fields
follow from the world's state (progress only rises, attempts count up,
replies answer existing posts, sessions end after they start). Activity is
skewed (Zipf-like): a few students, teachers, lessons and threads account
for much of it.

Delivery is then made imperfect the way real clients are: a fraction of
events is re-sent with the same ``event_id`` (a retry), and a fraction
arrives late (out of order). Both the world and the delivery are
reproducible from the seed alone (given the same ``now``).

    from scripts.eventgen import Config, generate, batches
    for batch in batches(generate(Config(events=1000, seed=7)), 100): ...

The modules:

- ``model``: what the platform is made of (``Config``, texts, the event mix)
  and how its people behave (every share, range and skew, named once);
- ``world``: ``World``, the platform as objects, one event per step;
- ``stream``: the world's events over the window, then their delivery;
- ``classroom``: ``Classroom``, one class at human pace (simulate --live);
- ``bulk``: the same world as numpy columns, millions of events at once, for
  the bulk loader (``python -m scripts.load_dataset``); needs numpy, so it is
  imported on its own: ``from scripts.eventgen import bulk``;
- ``columns``: ``Table`` and ``Column``, how ``bulk`` hands its events out,
  and its numpy helpers.
"""

from __future__ import annotations

from scripts.eventgen.classroom import Classroom, ForumPost, Learner
from scripts.eventgen.model import (
    DEFAULT_MIX,
    SECTION_NAMES,
    Config,
    Event,
    Weighted,
    zipf,
    zipf_weights,
)
from scripts.eventgen.stream import batches, deliver, generate, world_events
from scripts.eventgen.world import World

__all__ = (
    "DEFAULT_MIX",
    "SECTION_NAMES",
    "Classroom",
    "Config",
    "Event",
    "ForumPost",
    "Learner",
    "Weighted",
    "World",
    "batches",
    "deliver",
    "generate",
    "world_events",
    "zipf",
    "zipf_weights",
)
