import pytest
import topozarr_core
from topozarr_engine import kernel
from topozarr_engine.errors import KernelVersionError, TopozarrEngineError


def test_reexports():
    assert topozarr_core.__version__ == kernel.KERNEL_VERSION
    assert kernel.block_reduce is topozarr_core.block_reduce
    assert "mean" in kernel.METHODS
    assert kernel.MAX_NDIM >= 4


def test_pin_matches_installed_kernel():
    required = kernel.required_kernel_version()
    assert required is None or required == kernel.KERNEL_VERSION


def test_version_mismatch_message(monkeypatch):
    monkeypatch.setattr(kernel, "required_kernel_version", lambda: "9.9.9")
    with pytest.raises(KernelVersionError, match=r"topozarr-core==9\.9\.9") as info:
        kernel._check_version()
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value, TopozarrEngineError)
    assert "Reinstall" in str(info.value)


def test_a_kernel_without_shard_builder_is_a_version_error():
    import types

    kernel.check_features(topozarr_core)  # the installed kernel has everything
    old = types.SimpleNamespace(__version__=topozarr_core.__version__, __file__="/old/_core.so")
    with pytest.raises(
        KernelVersionError,
        match=r"has no ShardBuilder, SourceArray, Accumulator.export_states, ChunkFile, "
        r"ShardBuilder.append_chunk: it is older.*uv sync",
    ):
        kernel.check_features(old)
    # A kernel of the shard builder but not the native source reader is refused the same way.
    old.ShardBuilder = topozarr_core.ShardBuilder
    with pytest.raises(KernelVersionError, match=r"has no SourceArray, Accumulator"):
        kernel.check_features(old)
    # An Accumulator without the cluster's partial states (export/merge) too.
    old.SourceArray = topozarr_core.SourceArray
    old.Accumulator = types.SimpleNamespace()
    with pytest.raises(KernelVersionError, match=r"has no Accumulator.export_states, ChunkFile"):
        kernel.check_features(old)
    # A shard builder that cannot write chunks into a ChunkFile (io="rust" streams) too.
    old.Accumulator = topozarr_core.Accumulator
    old.ShardBuilder = types.SimpleNamespace()
    with pytest.raises(
        KernelVersionError, match=r"has no ChunkFile, ShardBuilder.append_chunk: it is"
    ):
        kernel.check_features(old)
