"""`python -m ml.pipeline <window|curate|features|train|evaluate> ...`: a step of the pipeline.

The model a step runs for comes from the environment: `MLPLAT_MODEL` (`ml.contracts.MODEL_ENV`),
which every step of a model's pipeline carries (curate, features, train and evaluate need it).

Exit 0 when the step did its work (an evaluation whose gate refused the candidate included);
exit 1 with a one-line reason on stderr, also written where SageMaker shows it (`message` in the
output directory for Processing, `failure` for Training; `SM_OUTPUT_DIR` moves it); exit 2 for
bad arguments. Progress goes to stdout (the job's log).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from ml.contracts import (
    COMMAND_CURATE,
    COMMAND_EVALUATE,
    COMMAND_FEATURES,
    COMMAND_TRAIN,
    COMMAND_WINDOW,
    PROCESSING_MESSAGE_FILE,
    TRAINING_FAILURE_FILE,
)
from ml.model import Model, model_from_env
from ml.pipeline.common import StepError, client, output_dir, write_message

Command = Callable[[argparse.Namespace], str]


def _model() -> Model:
    return model_from_env(os.environ)


def _window(args: argparse.Namespace) -> str:
    from ml.pipeline.window import run_window

    items = run_window(
        raw_bucket=args.raw_bucket,
        dataset=args.dataset,
        start=args.start,
        end=args.end,
        days=args.days,
        as_of=args.as_of,
        out=args.out,
        s3=client("s3", args.region),
    )
    return f"{len(items)} partitions, {items[0].dt} .. {items[-1].dt}: work items in {args.out}"


def _curate(args: argparse.Namespace) -> str:
    from ml.pipeline.curate import run_curate

    summary = run_curate(
        _model(),
        work=args.work,
        out=args.out,
        raw_bucket=args.raw_bucket,
        curated_bucket=args.curated_bucket,
        kms_key_arn=args.kms_key_arn or None,
        pipeline=args.pipeline,
        max_rejected_share=args.max_rejected_share,
        s3=client("s3", args.region),
        cloudwatch=client("cloudwatch", args.region),
    )
    return (
        f"{len(summary.partitions)} partitions: {summary.raw_rows} raw rows, "
        f"{summary.rejected} rejected ({summary.share:.2%}), {summary.curated} curated"
    )


def _features(args: argparse.Namespace) -> str:
    from ml.pipeline.features import run_features

    items = run_features(
        _model(),
        work=args.work,
        out=args.out,
        curated_bucket=args.curated_bucket,
        features_bucket=args.features_bucket,
        kms_key_arn=args.kms_key_arn or None,
        s3=client("s3", args.region),
    )
    return f"{len(items)} partitions, {sum(i.rows or 0 for i in items)} feature rows"


def _train(args: argparse.Namespace) -> str:
    from ml.pipeline.train import run_train
    from ml.train import ContainerPaths

    model = _model()
    paths = ContainerPaths.from_env()
    result = run_train(model, paths)
    metrics = result.metrics.to_dict()
    if "rmse" in metrics:
        figures = f"RMSE {metrics['rmse']:.4f}, MAE {metrics['mae']:.4f}"
    else:
        figures = f"ROC AUC {metrics['roc_auc']}, log loss {metrics['log_loss']:.4f}"
    return f"{model.name} model in {paths.model_dir}: {figures}"


def _evaluate(args: argparse.Namespace) -> str:
    from ml.pipeline.evaluate import run_evaluate

    report = run_evaluate(
        _model(),
        group=args.group,
        stack=args.stack,
        archive=args.model,
        out=args.out,
        sagemaker=client("sagemaker", args.region),
        s3=client("s3", args.region),
    )
    return str(report["message"])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml.pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Command, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help)
        sub.set_defaults(run=run)
        return sub

    window = command(COMMAND_WINDOW, _window, "the raw partitions of the window: work items")
    window.add_argument("--raw-bucket", required=True)
    window.add_argument("--dataset", required=True, help="the raw dataset (ml.schema)")
    window.add_argument("--start", default="", help='first day YYYY-MM-DD, or "" (--days)')
    window.add_argument("--end", default="", help='last day YYYY-MM-DD, or "" (--as-of)')
    window.add_argument("--days", required=True, help="days of data when --start is empty")
    window.add_argument("--as-of", required=True, help="when the execution started (ISO-8601)")
    window.add_argument("--out", type=Path, required=True, help="where the work items go")
    window.add_argument("--region", default=None)

    curate = command(COMMAND_CURATE, _curate, "raw -> curated zone, one partition at a time")
    curate.add_argument("--raw-bucket", required=True)
    curate.add_argument("--curated-bucket", required=True)
    curate.add_argument("--kms-key-arn", default="")
    curate.add_argument("--region", default=None)
    curate.add_argument("--pipeline", required=True, help="the metrics' Pipeline dimension")
    curate.add_argument("--max-rejected-share", type=float, required=True)
    curate.add_argument("--work", type=Path, required=True, help="the work items (a shard)")
    curate.add_argument("--out", type=Path, required=True)

    features = command(COMMAND_FEATURES, _features, "curated -> features zone")
    features.add_argument("--curated-bucket", required=True)
    features.add_argument("--features-bucket", required=True)
    features.add_argument("--kms-key-arn", default="")
    features.add_argument("--region", default=None)
    features.add_argument("--work", type=Path, required=True)
    features.add_argument("--out", type=Path, required=True)

    train = command(COMMAND_TRAIN, _train, "a training job: channels and SM_* environment")
    # SageMaker may pass "train" (or script-mode arguments): the contract is the environment.
    train.add_argument("ignored", nargs="*", help=argparse.SUPPRESS)

    evaluate = command(COMMAND_EVALUATE, _evaluate, "the gate against the serving version")
    evaluate.add_argument("--group", required=True, help="the model package group")
    evaluate.add_argument("--stack", required=True, help="the stack whose serving version counts")
    evaluate.add_argument("--region", default=None)
    evaluate.add_argument("--model", type=Path, required=True, help="the model.tar.gz (or dir)")
    evaluate.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s: %(message)s")
    try:
        print(args.run(args), flush=True)
        return 0
    except (StepError, ValueError) as exc:  # the message says it all (LakeError is a ValueError)
        reason = str(exc)
    except Exception as exc:
        traceback.print_exc()
        reason = f"{type(exc).__name__}: {exc}"
    line = f"{args.command} failed: {' '.join(reason.split())}"
    name = TRAINING_FAILURE_FILE if args.command == COMMAND_TRAIN else PROCESSING_MESSAGE_FILE
    write_message(output_dir() / name, line)
    print(line, file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
