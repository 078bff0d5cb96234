"""Public import path ``topozarr.pyramid``: the write plan (from topozarr-plan)."""

from topozarr_plan import Pyramid

__all__ = ["Pyramid"]
