package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.Human;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.engine.Targets;
import io.tidemark.format.Json;
import io.tidemark.format.ObjectKeys;
import io.tidemark.repository.Repository;
import io.tidemark.repository.Restorer;
import io.tidemark.repository.maintenance.PointRef;
import io.tidemark.repository.maintenance.Problem;
import io.tidemark.repository.maintenance.Verifier;
import java.io.IOException;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "verify",
        mixinStandardHelpOptions = true,
        description = {
            "Check that a repository is complete and intact, and repair it from another.",
            "Check a repository: every manifest parses, every index root and page it references is there and",
            "matches its digest, every chunk it references is there. --deep also reads every chunk and checks",
            "its digest. Every problem names the object and the restore points it breaks. --repair-from",
            "replaces each missing or corrupt object with the good copy another target holds, and checks it.",
            "Safe while backups, replication, prune and gc run.",
            "",
            "Exit 0: clean (or everything repaired); 2: problems remain.",
            "",
            "Example:  tidemark verify --config engine.yaml --target offsite --deep --repair-from local",
        })
final class VerifyCommand implements Callable<Integer> {

    @Mixin
    EngineOptions engine;

    @Option(
            names = {"--from", "--target"},
            required = true,
            description = "what to check: 'local', a target of the engine config, a directory or s3://…")
    String target;

    @Option(names = "--deep", description = "also read every chunk and verify its digest (reads all the data)")
    boolean deep;

    @Option(
            names = "--repair-from",
            paramLabel = "TARGET",
            description = "replace bad objects with good copies from this location (same forms as --target)")
    String repairFrom;

    @Option(names = "--vm", description = "only the restore points of this VM")
    String vm;

    @Option(names = "--parallel", defaultValue = "8", description = "chunks read at once by --deep (default: 8)")
    int parallel;

    @Option(names = "--json", description = "machine-readable output; no progress bar")
    boolean json;

    @Override
    public Integer call() throws IOException {
        EngineConfig c = engine.engineConfig();
        boolean tty = !json && System.console() != null;
        try (ObjectTarget checked = Targets.named(c, target);
                ObjectTarget source = repairFrom == null ? null : Targets.named(c, repairFrom)) {
            Repository repo = Repository.open(checked, engine.passphrases(c));
            Verifier verifier = new Verifier(repo, parallel);
            long t0 = System.nanoTime();
            Verifier.Report report = verifier.verify(
                    deep,
                    vm,
                    (done, total) -> {
                        if (tty) {
                            System.err.printf("\rverify: %d/%d manifests%s", done, total, done == total ? "\n" : "");
                        }
                    },
                    new ProgressBar(System.err, "verify --deep", tty));
            double secs = (System.nanoTime() - t0) / 1e9;
            Map<Problem, Verifier.Repair> repairs = new LinkedHashMap<>();
            if (source != null && !report.clean()) {
                report = repair(verifier, report, Repository.open(source, engine.passphrases(c)), repairs, tty);
            }
            long left = report.problems().stream()
                    .filter(p -> !repairs.containsKey(p) || !repairs.get(p).repaired())
                    .count();
            if (json) {
                printJson(repo, report, repairs, secs, left);
            } else {
                printText(repo, report, repairs, secs, left);
            }
            return left == 0 ? 0 : Main.EXIT_PERMANENT;
        }
    }

    /**
     * Repairs every problem; when a manifest, root or page was repaired, what it references has
     * not been checked yet, so checks again and repairs what that finds (a few rounds at most).
     *
     * @return the report with every problem found in any round
     */
    private Verifier.Report repair(
            Verifier verifier,
            Verifier.Report first,
            Repository from,
            Map<Problem, Verifier.Repair> repairs,
            boolean tty) {
        List<Problem> all = new ArrayList<>(first.problems());
        List<Problem> todo = first.problems();
        Verifier.Report last = first;
        for (int round = 0; round < 4 && !todo.isEmpty(); round++) {
            boolean indexRepaired = false;
            for (Verifier.Repair r : verifier.repair(todo, from, Clock.systemUTC())) {
                repairs.put(r.problem(), r);
                indexRepaired |= r.repaired() && !r.problem().key().startsWith(ObjectKeys.CHUNKS);
            }
            if (!indexRepaired) {
                break;
            }
            last = verifier.verify(deep, vm, Restorer.Progress.NONE, new ProgressBar(System.err, "verify again", tty));
            Set<String> known = new HashSet<>();
            all.forEach(p -> known.add(p.key()));
            todo = last.problems().stream()
                    .filter(p -> !known.contains(p.key()))
                    .toList();
            all.addAll(todo);
        }
        return new Verifier.Report(
                last.manifests(), last.roots(), last.pages(), last.chunks(), last.chunkBytesRead(), all);
    }

    private void printText(
            Repository repo, Verifier.Report r, Map<Problem, Verifier.Repair> repairs, double secs, long left) {
        System.out.printf(
                "verified %s%s: %d restore points, %d index roots, %d pages, %d chunks%s%n",
                repo.describe(),
                vm == null ? "" : " (VM " + vm + ")",
                r.manifests(),
                r.roots(),
                r.pages(),
                r.chunks(),
                deep
                        ? String.format(
                                ", %s of chunks read and checked in %.1f s (%.0f MiB/s)",
                                Human.bytes(r.chunkBytesRead()),
                                secs,
                                r.chunkBytesRead() / Math.max(secs, 1e-3) / (1 << 20))
                        : " (metadata only; --deep reads the chunks too)");
        r.problems().forEach(p -> printProblem(p, repairs.get(p)));
        if (r.clean()) {
            System.out.println("no problems found");
        } else {
            TreeSet<PointRef> broken = new TreeSet<>();
            r.problems().stream()
                    .filter(p -> !repairs.containsKey(p) || !repairs.get(p).repaired())
                    .forEach(p -> broken.addAll(p.affected()));
            System.out.printf(
                    "%d problems, %d repaired, %d remain; %d restore points still broken%n",
                    r.problems().size(), r.problems().size() - left, left, broken.size());
            if (left > 0 && repairFrom == null) {
                System.out.println("repair from a target that holds good copies:  tidemark verify --target " + target
                        + (deep ? " --deep" : "") + " --repair-from OTHER");
            }
        }
    }

    private static void printProblem(Problem p, Verifier.Repair fix) {
        System.out.printf("%-12s %s%n", p.kind(), p.key());
        System.out.printf("             %s%n", p.detail());
        System.out.printf("             breaks: %s%n", names(p.affected()));
        if (fix != null) {
            System.out.printf("             %s: %s%n", fix.repaired() ? "REPAIRED" : "NOT REPAIRED", fix.outcome());
        }
    }

    private void printJson(
            Repository repo, Verifier.Report r, Map<Problem, Verifier.Repair> repairs, double secs, long left)
            throws IOException {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("target", repo.describe());
        o.put("deep", deep);
        o.put("restorePoints", r.manifests());
        o.put("roots", r.roots());
        o.put("pages", r.pages());
        o.put("chunks", r.chunks());
        o.put("chunkBytesRead", r.chunkBytesRead());
        o.put("seconds", secs);
        o.put("problemsRemaining", left);
        ArrayNode problems = o.putArray("problems");
        for (Problem p : r.problems()) {
            ObjectNode n = problems.addObject();
            n.put("key", p.key());
            n.put("kind", p.kind().name());
            n.put("detail", p.detail());
            ArrayNode affected = n.putArray("affected");
            for (PointRef ref : p.affected()) {
                affected.addObject().put("vm", ref.vm()).put("restorePoint", ref.restorePointId());
            }
            Verifier.Repair fix = repairs.get(p);
            if (fix != null) {
                n.put("repaired", fix.repaired());
                n.put("repair", fix.outcome());
            }
        }
        System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(o));
    }

    private static String names(List<PointRef> points) {
        if (points.size() <= 6) {
            return points.toString();
        }
        return points.subList(0, 6) + " and " + (points.size() - 6) + " more";
    }
}
