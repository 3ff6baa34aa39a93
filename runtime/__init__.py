"""The torch-free runtime of bert-ner-compress: reading NER files, writing atomically, and ``run_ner_predict``.

It imports nothing of the rest of the project, and neither torch nor transformers at import time, so that the
``bert-ner-compress-serve`` distribution (``serve/``) ships it alone; training reads its data through it too.

  * ``textfiles``: open, decode and check text input, naming the file and line of a bad byte;
  * ``formats``: the CoNLL and JSON-lines readers (training and prediction) and the prediction output formats;
  * ``atomic``: write-then-rename for files, folders and ``--output``;
  * ``console``: a console command's known errors as one line on stderr and exit status 2;
  * ``scoring``: entities from tags, entity-level P/R/F1;
  * ``windows``: ``NerPredictor``, tagging over windows of subwords, in batches;
  * ``backends``: an ONNX Runtime session, or a transformers model, behind one ``logits`` call;
  * ``predict``: ``run_ner_predict``'s arguments and driver;
  * ``serve``: ``run_ner_predict --serve``, the same predictor over HTTP (FastAPI, imported only then), and its
    page in ``static/``.
"""
