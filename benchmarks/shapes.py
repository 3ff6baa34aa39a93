"""The BERT shapes whose random teachers the benchmarks build (only the architecture matters, not the weights)."""

NUM_LABELS = 9  # CoNLL-2003 in IOB2
SHAPES = {
    # bert-base-cased: BertConfig's defaults are bert-base (12 layers, hidden 768, 12 heads, FFN 3072)
    "bert-base": dict(vocab_size=28996),
    # all-MiniLM-L6-v2, the quickstart model
    "minilm": dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                   intermediate_size=1536),
}
