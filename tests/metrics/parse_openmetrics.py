"""Parses an OpenMetrics exposition (stdin) with the Prometheus Python client's parser, the
reference implementation, and prints what it found as JSON: the metric families with
their types, and the trace ids of the exemplars. A text the parser refuses exits 1 with
the parser's message."""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as error:
        print(f"not OpenMetrics: {error}", file=sys.stderr)
        return 1
    exemplars = sorted(
        {
            sample.exemplar.labels["trace_id"]
            for family in families
            for sample in family.samples
            if sample.exemplar is not None and "trace_id" in sample.exemplar.labels
        }
    )
    print(
        json.dumps(
            {
                "families": {family.name: family.type for family in families},
                "exemplar_trace_ids": exemplars,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
