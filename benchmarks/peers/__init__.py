"""Other tools run on the same teacher as ours, scored and timed the same way: one Markdown table.

``run_peers.py`` is the entry point; ``rows`` holds the table's record and its one writer; ``measure`` scores and
times a model with ``run_ner_predict``; ``peer_venvs`` runs a peer's script in the peer's own virtual environment
(built by ``make_venvs.sh``); ``ours`` makes our rows; ``peer_textpruner`` and ``peer_optimum`` are the scripts
that run inside those environments (they import nothing of this project).
"""
