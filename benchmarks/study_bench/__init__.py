"""The parts of ``benchmarks/bench_study_model.py``, one idea per module.

``bench_study_model.py`` is the command (its options and ``main``); what it runs lives here,
in the order a reader meets it:

* :mod:`study_bench.common`: the study's model in numbers, the fixed batch, the stopwatch
  every framework is timed with;
* :mod:`study_bench.machine`: facts about the machine (CPU, vector extensions, BLAS, peak memory);
* :mod:`study_bench.minicnn_timing`, :mod:`study_bench.torch_timing`,
  :mod:`study_bench.keras_timing`: one framework each, the same model and the same batch;
* :mod:`study_bench.layer_breakdown`: minicnn's own training step with a stopwatch on each
  layer's forward and backward;
* :mod:`study_bench.child_process`: each framework in a fresh process of its own;
* :mod:`study_bench.compare_revision`: ``--compare REV``, this tree's minicnn beside a
  commit's, exported with git;
* :mod:`study_bench.report`: the tables.

Nothing here imports minicnn at module level: with ``--compare`` a child process first puts
the exported commit on ``sys.path`` and only then imports minicnn (see
:func:`study_bench.minicnn_timing.import_minicnn`).
"""
