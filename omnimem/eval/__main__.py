"""Retrieval evaluations on real data.

python -m omnimem.eval locomo --data FILE [--k 5 10] [--questions N] [--grasp] [--ablation] [--budget 1024] [--json]
python -m omnimem.eval musique --qa FILE --corpus FILE [--k 2 5] [--grasp] [--ablation] [--question-corpus] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from omnimem.errors import OmnimemError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omnimem.eval", description=__doc__)
    sub = parser.add_subparsers(dest="task", required=True)
    locomo = sub.add_parser("locomo", help="LoCoMo evidence recall@k (hybrid vs BM25 vs dense)")
    locomo.add_argument(
        "--data", required=True, help="path to a LoCoMo JSON file, e.g. ../shared/data/locomo/locomo_dev.json"
    )
    locomo.add_argument("--k", type=int, nargs="+", default=[5, 10], help="cut-offs (default: 5 10)")
    locomo.add_argument("--encoder", default="minilm", help="text encoder name or path (default: minilm)")
    locomo.add_argument("--limit", type=int, default=None, help="only the first N conversations")
    locomo.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    locomo.add_argument("--questions", type=int, default=None, help="only the first N questions per conversation")
    musique = sub.add_parser("musique", help="MuSiQue passage recall@k over the whole corpus")
    musique.add_argument("--qa", required=True, help="e.g. ../shared/data/musique/musique_qa_train100.json")
    musique.add_argument("--corpus", required=True, help="e.g. ../shared/data/musique/musique_train_corpus.json")
    musique.add_argument("--k", type=int, nargs="+", default=[2, 5], help="cut-offs (default: 2 5)")
    musique.add_argument("--encoder", default="minilm", help="text encoder name or path (default: minilm)")
    musique.add_argument("--limit", type=int, default=None, help="only the first N questions")
    musique.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    musique.add_argument(
        "--question-corpus", action="store_true", help="index only the selected questions' paragraphs (quick run)"
    )
    for command in (locomo, musique):
        command.add_argument("--grasp", action="store_true", help="also run the GRASP pipeline (omnimem.retrieval)")
        command.add_argument("--ablation", action="store_true", help="GRASP with each stage switched off in turn")
        command.add_argument("--budget", type=int, default=1024, help="GRASP context budget in tokens (default 1024)")
        command.add_argument(
            "--backend", help="build the memory in this postgresql:// database (default: a temp folder)"
        )
        command.add_argument(
            "--folds", action="store_true", help="choose search settings on one half, report on the other, both ways"
        )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        from omnimem.encoders import create_encoder

        encoder = create_encoder(args.encoder)
        if args.task == "locomo":
            from omnimem.eval.locomo import evaluate_locomo, format_report

            result = evaluate_locomo(
                args.data, ks=args.k, encoder=encoder, limit=args.limit, grasp=args.grasp, ablation=args.ablation,
                budget=args.budget, questions=args.questions, backend=args.backend, folds=args.folds,
            )  # fmt: skip
        else:
            from omnimem.eval.musique import evaluate_musique, format_report

            result = evaluate_musique(
                args.qa, args.corpus, ks=args.k, encoder=encoder, limit=args.limit, grasp=args.grasp,
                ablation=args.ablation, budget=args.budget, question_corpus=args.question_corpus, backend=args.backend,
                folds=args.folds,
            )  # fmt: skip
    except OmnimemError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_report(result, args.k))
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
