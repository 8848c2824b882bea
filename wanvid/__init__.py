"""wanvid: a command-line client for the Wan image-to-video API (Alibaba Cloud Model Studio)."""

__version__ = "0.1.0"
