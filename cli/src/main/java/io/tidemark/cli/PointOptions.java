package io.tidemark.cli;

import io.tidemark.repository.RestorePointSelector;
import picocli.CommandLine.Option;

/**
 * {@code --point}, {@code --at}, {@code --tag}: how commands that start from one restore point
 * choose it. At most one may be given; none means the newest.
 */
final class PointOptions {

    @Option(
            names = "--point",
            paramLabel = "ID",
            description = "restore point id (as `tidemark list` shows), or 'latest' (default: the newest)")
    String point;

    @Option(
            names = "--at",
            paramLabel = "TIME",
            description = "the newest point captured at or before TIME: ISO-8601 (2026-11-24T03:00:00Z,"
                    + " 2026-11-24T05:00+02:00; without an offset: UTC) or relative ('2h ago', '1d12h ago')")
    String at;

    @Option(
            names = "--tag",
            paramLabel = "TAG",
            description =
                    "the point a pre-deploy hook took: pre-deploy:SHA or pre-deploy:APP@SHA (SHA may be abbreviated)")
    String tag;

    /**
     * What the flags select.
     *
     * @throws IllegalArgumentException for a malformed time or tag, or more than one flag (bad input)
     */
    RestorePointSelector.Criterion criterion(RestorePointSelector selector) {
        return selector.parse(point, at, tag);
    }
}
