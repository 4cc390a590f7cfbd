"""Export a generator to ONNX: z [N, z_dim] (+ c [N, c_dim]) -> img [N, C, R, R]. StyleGAN2: mapping +
synthesis, with the stored constant noise and a fixed truncation psi baked into the graph. BigGAN: G(z, c)
as it is (z arrives already truncated; for networks with per-truncation batch-norm statistics the
--trunc value picks the statistics baked in).

The graph is captured with torch.export (the ONNX 'dynamo' exporter) and runs the plain (non-fused)
modulated convolution, so the batch size stays dynamic.
`check_onnx` runs the file in onnxruntime and reports the max abs difference to PyTorch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

import torch
from torch import nn

from ganforge.errors import UsageError

OPSET = 18


class GeneratorForExport(nn.Module):
    """G(z, c) with truncation psi and const noise fixed, as one traceable forward."""

    def __init__(self, G: nn.Module, truncation_psi: float = 1.0, truncation_cutoff: int | None = None):
        super().__init__()
        self.G = G
        self.truncation_psi = float(truncation_psi)
        self.truncation_cutoff = truncation_cutoff

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        from ganforge.models import is_style_based

        if not is_style_based(self.G):
            return self.G(z, c, truncation=self.truncation_psi if self.G.init_kwargs.get("n_stats", 1) > 1 else None)
        ws = self.G.mapping(z, c, truncation_psi=self.truncation_psi, truncation_cutoff=self.truncation_cutoff,
                            update_emas=False)
        return self.G.synthesis(ws, noise_mode="const", force_fp32=True, fused_modconv=False)


def _inputs(G, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn([batch, G.z_dim], generator=g)
    if G.c_dim:
        c = torch.nn.functional.one_hot(torch.arange(batch) % G.c_dim, G.c_dim).to(torch.float32)
        return z, c
    return (z,)


@contextlib.contextmanager
def _quiet():
    """The exporter logs progress and optional-package notes; keep the command's output to its result."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch.fx", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


ONNX_TORCH_FLOOR = (2, 6)


def export_onnx(G: nn.Module, path: str | os.PathLike, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> None:
    """Write `G` (mapping + synthesis, const noise, fixed psi) as an ONNX graph with a dynamic batch.
    Needs torch >= 2.6 (the torch.export-based exporter, torch.onnx.export(dynamo=True))."""
    if tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2]) < ONNX_TORCH_FLOOR:
        raise UsageError(f"ONNX export needs torch >= {'.'.join(map(str, ONNX_TORCH_FLOOR))} (its torch.export-based "
                         f"exporter); this is torch {torch.__version__}: pip install -U torch")
    try:
        import onnx  # noqa: F401  (torch.onnx needs both to write the file)
        import onnxscript  # noqa: F401
    except ImportError:
        raise UsageError("ONNX export needs the 'onnx' and 'onnxscript' packages: "
                         "pip install onnx onnxscript onnxruntime") from None
    model = GeneratorForExport(G.eval(), truncation_psi, truncation_cutoff).cpu().eval()
    inputs = _inputs(G, 2)
    names = ["z", "c"][: len(inputs)]
    batch = torch.export.Dim("batch")
    try:
        with torch.no_grad(), _quiet():
            program = torch.onnx.export(model, inputs, input_names=names, output_names=["img"],
                                        dynamic_shapes=tuple({0: batch} for _ in inputs), opset_version=OPSET,
                                        dynamo=True, verbose=False)
        path = os.fspath(path)
        tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".tmp-{os.getpid()}-{os.path.basename(path)}")
        try:
            program.save(tmp, external_data=False)  # whole file first; an existing `path` is replaced only now
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}") from None


def check_onnx(G: nn.Module, path: str | os.PathLike, truncation_psi: float = 1.0,
               truncation_cutoff: int | None = None, batch: int = 3, seed: int = 123) -> float:
    """Max abs difference between onnxruntime on `path` and PyTorch on G for `batch` random latents."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UsageError("checking the ONNX file needs onnxruntime: pip install onnxruntime "
                         "(or pass --no-check)") from None
    inputs = _inputs(G, batch, seed)
    sess = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    got = sess.run(["img"], {n: t.numpy() for n, t in zip(names, inputs)})[0]
    with torch.no_grad():
        want = GeneratorForExport(G.eval(), truncation_psi, truncation_cutoff).cpu()(*inputs).numpy()
    return float(abs(got - want).max())
