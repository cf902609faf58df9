"""Classify texts with fewshot-serve through tritonclient, the Open Inference Protocol client, with its defaults.

    pip install "tritonclient[http]"
    fewshot-serve bundles/tnews --port 8000 --model-name tnews
    python examples/serving/triton_client.py --url 127.0.0.1:8000 --model tnews 股价大涨 球队夺冠

Prints one line per text: the label, then every label's probability (columns in the model metadata's
``parameters.labels`` order). Texts go as a BYTES tensor of shape [N] in Triton's binary format (pairs
for pair templates: shape [N, 2]); answers come back binary as well.
"""

import argparse
import sys

import numpy as np
import tritonclient.http as triton


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("texts", nargs="+")
    p.add_argument("--url", default="127.0.0.1:8000")
    p.add_argument("--model", default="tnews")
    p.add_argument("--api-key", default=None, help="sent as Authorization: Bearer KEY")
    args = p.parse_args()
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else None
    client = triton.InferenceServerClient(args.url)
    labels = client.get_model_metadata(args.model, headers=headers)["parameters"]["labels"]
    text = triton.InferInput("text", [len(args.texts)], "BYTES")
    text.set_data_from_numpy(np.array([t.encode("utf-8") for t in args.texts], dtype=object))
    result = client.infer(args.model, [text], headers=headers)
    for source, label, probs in zip(args.texts, result.as_numpy("label"), result.as_numpy("probabilities")):
        ranked = ", ".join(f"{name} {p:.3f}" for name, p in sorted(zip(labels, probs), key=lambda x: -x[1]))
        print(f"{source}\t{label.decode('utf-8')}\t{ranked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
