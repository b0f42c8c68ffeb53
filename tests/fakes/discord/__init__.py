"""A local Discord for end-to-end tests: the real discord.py talks to it over HTTP and a websocket.

See ``tests/fakes/README.md``. Start with ``async with DiscordEmulator() as discord: ...``.
"""

from .actions import CommandUnavailable
from .gateway import GatewayConfig
from .interactions import Interaction, InteractionConfig
from .messages import NewFile
from .ratelimit import RateLimitConfig
from .server import DiscordEmulator, EmulatorConfig
from .standard import sharded_world, standard_world
from .state import MODERATOR, Channel, Guild, Message, Perm, Role, User, World

__all__ = [
    "MODERATOR",
    "Channel",
    "CommandUnavailable",
    "DiscordEmulator",
    "EmulatorConfig",
    "GatewayConfig",
    "Guild",
    "Interaction",
    "InteractionConfig",
    "Message",
    "NewFile",
    "Perm",
    "RateLimitConfig",
    "Role",
    "User",
    "World",
    "sharded_world",
    "standard_world",
]
