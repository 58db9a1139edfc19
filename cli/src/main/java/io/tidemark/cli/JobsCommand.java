package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.Human;
import io.tidemark.core.InvalidInputException;
import io.tidemark.core.event.Trigger;
import io.tidemark.engine.EngineConfig;
import io.tidemark.engine.JobHistory;
import io.tidemark.engine.JobRuns;
import io.tidemark.format.Json;
import io.tidemark.policies.PolicyParser;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        mixinStandardHelpOptions = true,
        name = "jobs",
        description = {
            "List what the engine's snapshot jobs did, from its history on disk.",
            "",
            "One row per job, newest last: its firing (trigger and time), the restore point it committed or",
            "the failure with its reason, the duration, and the bytes read and new. The engine keeps the",
            "history under DATA/state/history (across restarts, rotated at about 40 MiB), so this works while",
            "the engine is down.",
            "",
            "Example: what failed in the last two hours",
            "  tidemark jobs --config /etc/tidemark/tidemark.yaml --failed --since 2h"
        })
final class JobsCommand implements Callable<Integer> {

    @Mixin
    EngineOptions engine;

    @Option(names = "--vm", paramLabel = "VM", description = "only this VM's jobs")
    String vm;

    @Option(names = "--failed", description = "only jobs whose newest outcome is a failure")
    boolean failed;

    @Option(
            names = "--since",
            paramLabel = "DURATION",
            description = "only jobs started within this long before now, such as 30m, 2h or 7d")
    String since;

    @Option(names = "--json", description = "machine-readable output")
    boolean json;

    Clock clock = Clock.systemUTC();

    @Override
    public Integer call() throws java.io.IOException {
        Instant from = Instant.MIN;
        if (since != null) {
            try {
                from = clock.instant().minus(PolicyParser.parseDuration(since.strip()));
            } catch (IllegalArgumentException e) {
                throw new InvalidInputException("--since '" + since + "' is not a duration such as 30m, 2h or 7d");
            }
        }
        EngineConfig c = engine.engineConfig();
        Path dir = JobHistory.directory(c.dataOrDefault());
        JobHistory.Contents history = JobHistory.read(dir, from);
        Instant after = from;
        List<JobRuns.Run> runs = JobRuns.of(history.events()).stream()
                .filter(r -> vm == null || r.vm().equals(vm))
                .filter(r -> !failed || r.state() == JobRuns.State.FAILED)
                .filter(r -> !r.startedAt().isBefore(after))
                .toList();
        if (json) {
            ArrayNode out = Json.mapper().createArrayNode();
            runs.forEach(r -> out.add(json(r)));
            System.out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(out));
        } else if (runs.isEmpty()) {
            System.out.println("no jobs" + (history.events().isEmpty() ? " recorded in " + dir : " match"));
        } else {
            System.out.printf(
                    "%-20s %-16s %-24s %-10s %9s %9s %9s  %s%n",
                    "STARTED", "VM", "TRIGGER", "OUTCOME", "DURATION", "READ", "NEW", "RESTORE POINT / REASON");
            for (JobRuns.Run r : runs) {
                System.out.printf(
                        "%-20s %-16s %-24s %-10s %9s %9s %9s  %s%n",
                        r.startedAt().truncatedTo(ChronoUnit.SECONDS).toString(),
                        r.vm(),
                        r.trigger().map(JobsCommand::trigger).orElse("?"),
                        r.state().name().toLowerCase(Locale.ROOT),
                        r.duration().map(JobsCommand::seconds).orElse("-"),
                        r.restorePointId().isPresent() ? Human.bytes(r.bytesRead()) : "-",
                        r.restorePointId().isPresent() ? Human.bytes(r.bytesNew()) : "-",
                        outcome(r));
            }
        }
        if (history.skipped() > 0) {
            System.err.printf(
                    "warning: %d line(s) of the history in %s could not be read (a line cut off by a killed engine,"
                            + " or written by a newer version) and are left out%n",
                    history.skipped(), dir);
        }
        return 0;
    }

    private static String outcome(JobRuns.Run r) {
        StringBuilder s = new StringBuilder();
        r.restorePointId().ifPresent(s::append);
        if (!r.replicas().isEmpty()) {
            s.append(" → ")
                    .append(r.replicas().stream().map(JobRuns.Replica::target).collect(Collectors.joining(", ")));
        }
        r.failure().ifPresent(f -> {
            if (!s.isEmpty()) {
                s.append("; ");
            }
            s.append(f.reason().map(Enum::name).orElse("FAILED"))
                    .append(" at ")
                    .append(f.stage())
                    .append(": ")
                    .append(f.error());
        });
        if (s.isEmpty()) {
            s.append(r.capturedAt().isPresent() ? "captured, committing" : "waiting to run");
        }
        return s + " (job " + r.jobId() + ")";
    }

    static String trigger(Trigger t) {
        String attributes = t.sortedAttributes().entrySet().stream()
                .filter(e -> !e.getKey().equals("policy"))
                .map(e -> e.getValue())
                .collect(Collectors.joining(" "));
        return attributes.isEmpty() ? t.kind().spelling() : t.kind().spelling() + " " + attributes;
    }

    private static String seconds(Duration d) {
        return String.format(Locale.ROOT, "%.1f s", d.toMillis() / 1000.0);
    }

    private static ObjectNode json(JobRuns.Run r) {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("jobId", r.jobId());
        o.put("vm", r.vm());
        r.host().ifPresent(h -> o.put("host", h));
        r.policy().ifPresent(p -> o.put("policy", p));
        r.trigger().ifPresent(t -> {
            ObjectNode n = o.putObject("trigger");
            n.put("kind", t.kind().spelling());
            ObjectNode attrs = n.putObject("attributes");
            t.sortedAttributes().forEach(attrs::put);
        });
        r.scheduledFor().ifPresent(t -> o.put("scheduledFor", t.toString()));
        o.put("startedAt", r.startedAt().toString());
        o.put("state", r.state().name().toLowerCase(Locale.ROOT));
        r.capturedAt().ifPresent(t -> o.put("capturedAt", t.toString()));
        r.committedAt().ifPresent(t -> o.put("committedAt", t.toString()));
        r.restorePointId().ifPresent(id -> o.put("restorePointId", id));
        r.duration().ifPresent(d -> o.put("durationMs", d.toMillis()));
        o.put("bytesRead", r.bytesRead());
        o.put("bytesNew", r.bytesNew());
        ArrayNode replicas = o.putArray("replicas");
        for (JobRuns.Replica rep : r.replicas()) {
            ObjectNode n = replicas.addObject();
            n.put("target", rep.target());
            n.put("at", rep.at().toString());
            n.put("bytesSent", rep.bytesSent());
        }
        r.failure().ifPresent(f -> {
            ObjectNode n = o.putObject("failure");
            n.put("at", f.at().toString());
            n.put("stage", f.stage());
            f.reason().ifPresent(reason -> n.put("reason", reason.name()));
            n.put("error", f.error());
            n.put("retriable", f.retriable());
        });
        return o;
    }
}
