"""Audio: G.711 mu-law codec, streaming 3:1 resamplers and the echo canceller. Pure, no I/O."""

from .echo import EchoCanceller
from .g711 import ULAW_SILENCE, ulaw_decode, ulaw_encode
from .resample import DELAY_8K, DELAY_24K, DELAY_MS, Downsampler, Upsampler
from .transcode import CallerToModel, ModelToCaller

__all__ = [
    "DELAY_8K",
    "DELAY_24K",
    "DELAY_MS",
    "ULAW_SILENCE",
    "CallerToModel",
    "Downsampler",
    "EchoCanceller",
    "ModelToCaller",
    "Upsampler",
    "ulaw_decode",
    "ulaw_encode",
]
