package io.tidemark.demo;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.files.FileTrees;
import io.tidemark.demo.bench.ScatteredBench;
import io.tidemark.format.Json;
import io.tidemark.targets.file.Durability;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
        name = "scattered",
        mixinStandardHelpOptions = true,
        description = {
            "Scenario 6 of `tidemark bench` alone (issue 15, ADR 15): a mixed image of text, random",
            "data and zeros in runs, backed up in full, then an incremental of one sequential run plus",
            "scattered 4 KiB writes (--dirty %% of the image) against restic re-backing up the raw image.",
            "Reports bytes read and stored per byte the guest changed, time against restic, and checks",
            "the restore of the incremental against the changed image. Needs qemu-img, qemu-nbd, qemu-io",
            "and restic (without restic its comparison is skipped, and said so). Figures:",
            "docs/benchmarks.md §1.",
        })
final class ScatteredBenchCommand implements Callable<Integer> {

    @Option(names = "--dir", description = "scratch directory (default: a new temporary one)")
    Path dir;

    @Option(names = "--image-size", defaultValue = "4GiB", description = "mixed image size (default ${DEFAULT-VALUE})")
    String imageSize;

    @Option(
            names = "--dirty",
            defaultValue = "1",
            description = "percent of the image changed (default ${DEFAULT-VALUE})")
    double dirtyPercent;

    @Option(
            names = "--durability",
            defaultValue = "per-file",
            description = "the repository's durability: per-file (default: an fsync per object and directory) or"
                    + " filesystem (syncfs at each barrier, for a repository on a file system of its own; ADR 25)")
    String durability;

    @Option(names = "--keep", description = "keep the images and repositories")
    boolean keep;

    @Option(names = "--json", description = "machine-readable output")
    boolean json;

    @Override
    public Integer call() throws IOException {
        Path work = dir != null ? dir : Files.createTempDirectory("tm-bench-scattered-");
        ObjectNode report = Json.mapper().createObjectNode();
        try {
            new ScatteredBench(
                            work, BenchCommand.size(imageSize), dirtyPercent / 100, Durability.parse(durability), p -> {
                                if (!json) {
                                    System.err.println("- " + p);
                                }
                            })
                    .run(report);
        } finally {
            if (!keep) {
                FileTrees.delete(work);
            }
        }
        if (json) {
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(report));
        } else {
            BenchCommand.printScattered(report, System.out);
        }
        return 0;
    }
}
