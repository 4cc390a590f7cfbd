"""StyleGAN2 training: the loop (loop.py: the Trainer), its options and resume rules (options.py), set-up
(setup.py), the four phases of an iteration (phases.py), the random streams (rng.py), losses (loss.py),
presets (presets.py), EMA (ema.py), the lazy-regularization Adam (optim.py), ADA (augment/), run
directories and exact resume (rundir.py), and data-parallel training with torchrun (distributed.py).

    from ganforge.train import TrainOptions, train
    run_dir = train(TrainOptions(data="faces.zip", outdir="runs", cfg="auto", kimg=1000))
"""


def __getattr__(name):  # lazy: importing ganforge.train does not start the loop's imports
    if name in ("TrainOptions", "Trainer", "train"):
        from ganforge.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'ganforge.train' has no attribute {name!r}")


__all__ = ["TrainOptions", "Trainer", "train"]
