"""`rfm sweep`, `train`, `label`, `models list|promote|upgrade`, `export`, `report`, `package`: the segment model.

Each command parses its flags, calls rfm.service and prints; scikit-learn and pandas are imported by
the service when a command needs them, so `rfm --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from rfm.cli.common import add_models_dir, add_rfm_args, load_dataset, model_store, settings_from_args, warn
from rfm.errors import ModelError, RfmError

if TYPE_CHECKING:
    import pandas as pd

    from rfm.model.sweep import SweepResult
    from rfm.service.segmentation import Segmentation

DEFAULT_SEED = 42  # rfm.service.models.DEFAULT_SEED: the same data, k and seed give the same model


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sweep", help="fit k = k-min..k-max and recommend a number of segments")
    add_rfm_args(p)
    p.add_argument("--k-min", type=int, default=2)
    p.add_argument("--k-max", type=int, default=10)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=cmd_sweep)

    p = subparsers.add_parser("train", help="train a k-segment model and save it as a new version")
    add_rfm_args(p)
    p.add_argument("--k", type=int, required=True, help="number of segments")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--promote", action="store_true", help="make the new version the current one")
    p.add_argument("--no-sweep", action="store_true", help="do not store the k = 2..10 sweep with the model")
    add_models_dir(p)
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser(
        "label", help="rename segments of a model version (several at once: one atomic write)",
        usage="rfm label [-h] [--models-dir DIR] VERSION CLUSTER NAME [CLUSTER NAME ...]")
    p.add_argument("version", metavar="VERSION")
    p.add_argument("renames", nargs="+", metavar="CLUSTER NAME",
                   help="a cluster id or its current name, then the new business name; repeat the pair to "
                   "rename several (swaps allowed)")
    add_models_dir(p)
    p.set_defaults(func=cmd_label)

    models = subparsers.add_parser("models", help="list, promote or upgrade model versions")
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p = models_sub.add_parser("list", help="list the saved versions (* = current)")
    p.add_argument("--json", action="store_true")
    add_models_dir(p)
    p.set_defaults(func=cmd_models_list)
    p = models_sub.add_parser("promote", help="make a version the current one (models/CURRENT)")
    p.add_argument("version", metavar="VERSION")
    add_models_dir(p)
    p.set_defaults(func=cmd_models_promote)
    p = models_sub.add_parser(
        "upgrade", help="convert an old-format version (model.joblib) to model.skops + manifest.json; "
        "UNPICKLES model.joblib: only for files you trust")
    p.add_argument("version", metavar="VERSION")
    add_models_dir(p)
    p.set_defaults(func=cmd_models_upgrade)

    p = subparsers.add_parser("export", help="one row a customer: RFM, scores, cluster and segment name")
    add_rfm_args(p)
    p.add_argument("--model", metavar="VERSION", help="model version (default: the current one)")
    p.add_argument("--segment", nargs="+", action="extend", metavar="NAME",
                   help="keep only these segments (names, case-insensitive, or cluster ids)")
    p.add_argument("--out", required=True, metavar="FILE.csv", help="CSV file to write, - for standard output")
    add_models_dir(p)
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("report", help="segment profiles and revenue concentration")
    add_rfm_args(p)
    p.add_argument("--model", metavar="VERSION", help="model version (default: the current one)")
    p.add_argument("--json", action="store_true")
    add_models_dir(p)
    p.set_defaults(func=cmd_report)

    p = subparsers.add_parser("package", help="build model.tar.gz for SageMaker (/opt/ml/model)")
    p.add_argument("version", metavar="VERSION")
    p.add_argument("--out", required=True, metavar="model.tar.gz")
    add_models_dir(p)
    p.set_defaults(func=cmd_package)


def cmd_sweep(args: argparse.Namespace) -> int:
    from rfm.service import models

    result = models.sweep(load_dataset(args, settings_from_args(args)), args.k_min, args.k_max, seed=args.seed)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    print(format_sweep(result))
    return 0


def format_sweep(result: SweepResult) -> str:
    lines = [f"{'k':>3} {'inertia':>12} {'silhouette':>10} {'davies_bouldin':>14} "
             f"{'calinski_harabasz':>17} {'smallest_share':>14}"]
    for m in result.metrics:
        mark = "  <- recommended" if m.k == result.recommended_k else ""
        lines.append(f"{m.k:>3} {m.inertia:>12.1f} {m.silhouette:>10.3f} {m.davies_bouldin:>14.3f} "
                     f"{m.calinski_harabasz:>17.1f} {m.smallest_cluster_share:>14.1%}{mark}")
    lines.append(f"recommended: {result.reason}")
    lines.append(f"{result.silhouette_note}; trained on {result.customers:,} customers with positive "
                 f"net monetary")
    if result.excluded_customers:
        lines.append(f"left out: {result.excluded_customers:,} customers with zero or negative net monetary "
                     f"(net revenue {result.excluded_revenue:,.2f})")
    return "\n".join(lines)


def cmd_train(args: argparse.Namespace) -> int:
    from rfm.service import models

    settings = settings_from_args(args)
    dataset = load_dataset(args, settings)
    model = models.train(dataset, args.k, seed=args.seed, with_sweep=not args.no_sweep)
    version = models.save(model_store(settings), model, promote=args.promote)
    rows = model.metadata.rows
    print(f"trained k={model.k} on {rows.trained_customers:,} customers "
          f"({rows.excluded_customers:,} with zero or negative monetary left out); segments: "
          + ", ".join(c.name for c in model.clusters)
          + (f"; promoted to current in {settings.models_dir}" if args.promote else ""), file=sys.stderr)
    print(version)
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from rfm.service import models

    if len(args.renames) % 2:
        raise RfmError("give pairs of CLUSTER NAME (a cluster id or its current name, then the new name)")
    pairs = list(zip(args.renames[::2], args.renames[1::2], strict=True))
    store = model_store(settings_from_args(args))
    before = store.load(args.version)
    ids = [models.resolve_cluster(before, cluster) for cluster, _ in pairs]
    if len(set(ids)) != len(ids):
        raise ModelError("a cluster is named twice in one rename")
    renamed = models.rename(store, args.version, {cluster_id: name for cluster_id, (_, name) in zip(ids, pairs,
                                                                                               strict=True)})
    for cluster_id in ids:
        print(f"{args.version}: cluster {cluster_id} {before.segment_name(cluster_id)!r} -> "
              f"{renamed.segment_name(cluster_id)!r}")
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    from rfm.service import models

    settings = settings_from_args(args)
    summaries = models.versions(model_store(settings))
    if args.json:
        print(json.dumps([s.as_dict() for s in summaries], indent=2))
        return 0
    if not summaries:
        print(f"no models in {settings.models_dir}", file=sys.stderr)
        return 0
    from rfm.cli import one_line  # names written by older versions may hold control characters

    for s in summaries:
        mark = "*" if s.current else " "
        if s.error:
            print(one_line(f"{mark} {s.version}  unreadable: {s.error}"))
            continue
        customers = f"{s.customers:,}" if isinstance(s.customers, int) else "?"
        print(one_line(f"{mark} {s.version}  k={s.k}  created {s.created}  snapshot {s.snapshot}  "
                       f"customers {customers}  segments: {', '.join(map(str, s.segments))}"))
    return 0


def cmd_models_promote(args: argparse.Namespace) -> int:
    from rfm.service import models

    models.promote(model_store(settings_from_args(args)), args.version)
    print(f"current model: {args.version}")
    return 0


def cmd_models_upgrade(args: argparse.Namespace) -> int:
    from rfm.service import models

    store = model_store(settings_from_args(args))
    model = models.upgrade(store, args.version, warn=warn)
    files = "model.skops, metadata.json, manifest.json" + (", manifest.sig" if store.signed else "")
    print(f"upgraded {model.version}: model.joblib -> {files} (same clusters and centres)", file=sys.stderr)
    return 0


def _segmentation(args: argparse.Namespace) -> Segmentation:
    """The chosen model applied to the chosen data; a model/data mismatch is one `warning:` line."""
    from rfm.service import models, segmentation

    settings = settings_from_args(args)
    store = model_store(settings)
    model = models.load(store, args.model)
    # The analysts' playbook (descriptions and actions) from the store, as the dashboard's export has it.
    result = segmentation.apply(load_dataset(args, settings), model, segmentation.load_playbook(store.root))
    warn(result.warning)
    return result


def cmd_export(args: argparse.Namespace) -> int:
    from rfm.service.segmentation import ExportFilter, export_csv, export_frame

    _check_csv_out(args.out)  # before the model and the data are loaded
    result = _segmentation(args)
    frame = export_frame(result, ExportFilter(segments=tuple(args.segment or ())))
    payload = export_csv(frame)
    if args.out == "-":
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
        return 0
    try:
        with open(args.out, "wb") as handle:
            handle.write(payload)
    except OSError as exc:
        raise RfmError(f"{args.out}: cannot write: {exc.strerror or exc}") from exc
    print(f"wrote {len(frame):,} customers (model {result.model.version}, snapshot {result.dataset.snapshot}) "
          f"to {args.out}", file=sys.stderr)
    return 0


def _check_csv_out(out: str) -> None:
    """`rfm export --out` writes CSV: a .csv name (or no extension, or - for standard output)."""
    name = os.path.basename(out).lower()
    stem, ext = os.path.splitext(name)
    if out != "-" and ext and stem and ext != ".csv":
        raise RfmError(f"{out}: cannot write {ext} files; export --out writes .csv (or - for standard output)")
    if os.path.isdir(out):
        raise RfmError(f"{out}: is a folder; --out names a file")


def cmd_report(args: argparse.Namespace) -> int:
    from rfm.service.segmentation import report

    result = report(_segmentation(args))
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    model, dataset, concentration = result.segmentation.model, result.segmentation.dataset, result.concentration
    print(f"model {model.version} (k={model.k}), snapshot {dataset.snapshot}, {len(dataset.customers):,} customers")
    print(format_profiles(result.profiles))
    print()
    print(f"revenue concentration over {concentration.customers:,} customers with positive net revenue "
          f"(total {concentration.revenue:,.2f}):")
    for share, revenue_share in concentration.top_shares.items():
        print(f"  top {share:>4.0%} of customers: {revenue_share:6.1%} of revenue")
    print(f"  Gini coefficient: {concentration.gini:.3f}")
    return 0


def format_profiles(profiles: pd.DataFrame) -> str:
    import pandas as pd

    shown = pd.DataFrame({
        "segment": profiles["segment"],
        "customers": profiles["customers"].map("{:,}".format),
        "cust %": profiles["customer_share"].map("{:.1%}".format),
        "revenue": profiles["revenue"].map("{:,.0f}".format),
        "rev %": profiles["revenue_share"].map("{:.1%}".format),
        "R mean/med": [f"{a:.0f}/{b:.0f}" for a, b in zip(profiles["recency_mean"], profiles["recency_median"],
                                                          strict=True)],
        "F mean/med": [f"{a:.1f}/{b:.0f}" for a, b in zip(profiles["frequency_mean"],
                                                          profiles["frequency_median"], strict=True)],
        "M mean/med": [f"{a:,.0f}/{b:,.0f}" for a, b in zip(profiles["monetary_mean"],
                                                            profiles["monetary_median"], strict=True)],
    })
    return shown.to_string(index=False)


def cmd_package(args: argparse.Namespace) -> int:
    from rfm.service import models

    out = models.package(model_store(settings_from_args(args)), args.version, args.out)
    print(f"wrote {out} (the version's model.skops, metadata.json and manifest at the root, for /opt/ml/model)",
          file=sys.stderr)
    return 0
