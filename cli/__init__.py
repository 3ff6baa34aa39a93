"""The command line of ``run_ner_compress.py``: its flags, every check before a run starts, and the run's steps.

  * ``arguments``: the six argument dataclasses (each flag once: help, default, bounds, choices), the parser,
    what ``--help`` shows first, and ``flag_error`` (a model limit, named as its flag);
  * ``config_file``: a .json/.yaml file in place of the flags, each value of its flag's type;
  * ``budget``: ``--recipe``, ``--target_ratio``/``--target_params`` and a bare model type's recipe;
  * ``checks``: ``check_run``, the checks across flags and against the source's shape (meta device);
  * ``sources``: the model, teacher, tokenizer and Hub sources a run names;
  * ``run_folder``: the output folder's lock, checkpoints, and the staged final save;
  * ``steps``: data, teacher, model, trainer, training and the saved outputs, in the order of ``run``;
  * ``quickstart``: what ``--quickstart`` prints at its end.

It sits above ``trainers``, ``export`` and ``hub_cards`` and below the script: nothing of the packages imports it.
Known input errors become one line and exit status 2 in ``runtime.console`` (shared with ``run_ner_predict``).
"""
