"""`rfm sweep`, `train`, `label`, `models list|promote`, `export`, `report`, `package`: the segment model."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from rfm.cli.common import add_rfm_args, rfm_from_args, write_csv
from rfm.errors import ModelError

if TYPE_CHECKING:  # scikit-learn and pandas are imported by the commands, so `rfm --help` stays fast
    import pandas as pd

    from rfm.model import SegmentModel
    from rfm.model.sweep import SweepResult

DEFAULT_SEED = 42  # the seed rfm.model uses by default; the same data, k and seed give the same model


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
    _add_models_dir(p)
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("label", help="rename a segment of a model version")
    p.add_argument("version", metavar="VERSION")
    p.add_argument("cluster", metavar="CLUSTER", help="cluster id, or its current name")
    p.add_argument("name", metavar="NAME", help="the new business name")
    _add_models_dir(p)
    p.set_defaults(func=cmd_label)

    models = subparsers.add_parser("models", help="list or promote model versions")
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p = models_sub.add_parser("list", help="list the saved versions (* = current)")
    p.add_argument("--json", action="store_true")
    _add_models_dir(p)
    p.set_defaults(func=cmd_models_list)
    p = models_sub.add_parser("promote", help="make a version the current one (models/CURRENT)")
    p.add_argument("version", metavar="VERSION")
    _add_models_dir(p)
    p.set_defaults(func=cmd_models_promote)

    p = subparsers.add_parser("export", help="one row a customer: RFM, scores, cluster and segment name")
    add_rfm_args(p)
    p.add_argument("--model", metavar="VERSION", help="model version (default: the current one)")
    p.add_argument("--segment", nargs="+", action="extend", metavar="NAME",
                   help="keep only these segments (names, case-insensitive)")
    p.add_argument("--out", required=True, metavar="FILE.csv", help="CSV file to write, - for standard output")
    _add_models_dir(p)
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("report", help="segment profiles and revenue concentration")
    add_rfm_args(p)
    p.add_argument("--model", metavar="VERSION", help="model version (default: the current one)")
    p.add_argument("--json", action="store_true")
    _add_models_dir(p)
    p.set_defaults(func=cmd_report)

    p = subparsers.add_parser("package", help="build model.tar.gz for SageMaker (/opt/ml/model)")
    p.add_argument("version", metavar="VERSION")
    p.add_argument("--out", required=True, metavar="model.tar.gz")
    _add_models_dir(p)
    p.set_defaults(func=cmd_package)


def _add_models_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models-dir", default="models", metavar="DIR",
                        help="where model versions live (default: models)")


def cmd_sweep(args: argparse.Namespace) -> int:
    from rfm.model import sweep
    result = sweep(rfm_from_args(args).table, args.k_min, args.k_max, seed=args.seed)
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
    from rfm.model import ModelStore, sweep, train_model
    from rfm.model.pipeline import training_data
    result = rfm_from_args(args)
    data = training_data(result.table)
    sweep_result = None
    k_max = min(10, data.trained_customers - 1)
    if not args.no_sweep and args.k >= 2 and args.k < data.trained_customers and k_max >= 2:
        sweep_result = sweep(result.table, 2, k_max, seed=args.seed)
    model = train_model(result, args.k, seed=args.seed, sweep_result=sweep_result)
    store = ModelStore(args.models_dir)
    version = store.save(model)
    if args.promote:
        store.promote(version)
    rows = model.metadata["rows"]
    print(f"trained k={model.k} on {rows['trained_customers']:,} customers "
          f"({rows['excluded_customers']:,} with zero or negative monetary left out); segments: "
          + ", ".join(c.name for c in model.clusters)
          + (f"; promoted to current in {args.models_dir}" if args.promote else ""), file=sys.stderr)
    print(version)
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from rfm.model import ModelStore
    store = ModelStore(args.models_dir)
    model = store.load(args.version)
    cluster = args.cluster.strip()
    try:
        cluster_id = int(cluster)
    except ValueError:
        cluster_id = model.cluster_id(cluster)
    old = model.segment_name(cluster_id)
    store.rename_cluster(args.version, cluster_id, args.name)
    renamed = store.load(args.version).segment_name(cluster_id)
    print(f"{args.version}: cluster {cluster_id} {old!r} -> {renamed!r}")
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    from rfm.model import ModelStore
    store = ModelStore(args.models_dir)
    summaries = store.summaries()
    if args.json:
        print(json.dumps(summaries, indent=2))
        return 0
    if not summaries:
        print(f"no models in {args.models_dir}", file=sys.stderr)
        return 0
    for s in summaries:
        mark = "*" if s["current"] else " "
        if "error" in s:
            print(f"{mark} {s['version']}  unreadable: {s['error']}")
            continue
        customers = f"{s['customers']:,}" if isinstance(s["customers"], int) else "?"
        print(f"{mark} {s['version']}  k={s['k']}  created {s['created']}  snapshot {s['snapshot']}  "
              f"customers {customers}  segments: {', '.join(map(str, s['segments']))}")
    return 0


def cmd_models_promote(args: argparse.Namespace) -> int:
    from rfm.model import ModelStore
    ModelStore(args.models_dir).promote(args.version)
    print(f"current model: {args.version}")
    return 0


def _model(args: argparse.Namespace) -> SegmentModel:
    from rfm.model import ModelStore
    return ModelStore(args.models_dir).load(args.model)


def cmd_export(args: argparse.Namespace) -> int:
    model = _model(args)
    result = rfm_from_args(args)
    table = model.assign(result.table)
    if args.segment:
        ids = {model.cluster_id(name) for name in args.segment}
        table = table[table["cluster"].isin(ids)]
    write_csv(table, args.out)
    if args.out != "-":
        print(f"wrote {len(table):,} customers (model {model.version}, snapshot {result.snapshot}) "
              f"to {args.out}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from rfm.model import revenue_concentration, segment_profiles
    model = _model(args)
    result = rfm_from_args(args)
    profiles = segment_profiles(model.assign(result.table))
    concentration = revenue_concentration(result.table["monetary"])
    if args.json:
        report: dict[str, Any] = {
            "model": model.version,
            "snapshot": result.snapshot.isoformat(),
            "customers": len(result.table),
            "segments": json.loads(profiles.to_json(orient="records")),
            "revenue_concentration": concentration.as_dict(),
        }
        print(json.dumps(report, indent=2))
        return 0
    print(f"model {model.version} (k={model.k}), snapshot {result.snapshot}, {len(result.table):,} customers")
    print(format_profiles(profiles))
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
    from rfm.model import ModelStore
    try:
        out = ModelStore(args.models_dir).package(args.version, args.out)
    except OSError as exc:
        raise ModelError(f"{args.out}: cannot write: {exc.strerror or exc}") from exc
    print(f"wrote {out} (model.joblib and metadata.json at the root, for /opt/ml/model)", file=sys.stderr)
    return 0
