"""Images: from a message's files to bounded, normalised, resized images ready for the model.

``policy`` decides sizes, ``codec`` reads and encodes within limits, ``prepare`` runs that off the
event loop, ``shared`` makes one download and decode serve every feature that looks at an image,
``attachments`` downloads through one memory budget and says what was left out, ``media``
fetches what a message only links to (previews, stickers) through Discord's media proxy alone.
``from_discord`` reads a message's images; it is the one part that imports discord, so it is imported
by its own name and not re-exported here.
"""

from bot.images.attachments import (
    AttachmentLike,
    DownloadFailed,
    DownloadGate,
    GatheredImages,
    check_size,
    download,
    download_held,
    downloaded,
    gather_images,
    image_attachments,
    is_image,
)
from bot.images.budget import MemoryGate, return_large_frees_to_the_os
from bot.images.codec import MAX_DATA_URL_CHARS, MAX_INPUT_BYTES, ImageRejected
from bot.images.media import MediaFetcher, MediaRefused, MessageImages, ProxiedImage
from bot.images.policy import Detail, qwen_image_tokens
from bot.images.prepare import ImageWorker, PreparedImage, prepare_image, prepare_text_images
from bot.images.shared import CONVERSATION_DETAIL, SharedImages

__all__ = [
    "CONVERSATION_DETAIL",
    "MAX_DATA_URL_CHARS",
    "MAX_INPUT_BYTES",
    "AttachmentLike",
    "Detail",
    "DownloadFailed",
    "DownloadGate",
    "GatheredImages",
    "ImageRejected",
    "ImageWorker",
    "MediaFetcher",
    "MediaRefused",
    "MemoryGate",
    "MessageImages",
    "PreparedImage",
    "ProxiedImage",
    "SharedImages",
    "check_size",
    "download",
    "download_held",
    "downloaded",
    "gather_images",
    "image_attachments",
    "is_image",
    "prepare_image",
    "prepare_text_images",
    "qwen_image_tokens",
    "return_large_frees_to_the_os",
]
