package io.tidemark.engine;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.FailureReason;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.hypervisor.Capture;
import io.tidemark.core.hypervisor.CaptureRequest;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.hypervisor.VmInfo;
import io.tidemark.replicator.Reconciler;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.RecordingEventBus;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The alert rules, their unit tests and every query of the Grafana dashboard in deploy/monitoring
 * pass promtool, and every metric they (and the Zabbix template) name is one the engine exports. No
 * silent skip: promtool comes with Debian's prometheus package, which deploy/install-deps.sh
 * installs; without it this test fails.
 */
class MonitoringAsCodeTest {

    private static final Instant T0 = Instant.parse("2026-12-06T00:00:00Z");
    private static final Pattern METRIC = Pattern.compile("\\b((?:tidemark|jvm)_[a-z_]+)\\b");

    @TempDir
    Path tmp;

    static Path monitoring() {
        Path dir = Path.of("").toAbsolutePath();
        while (dir != null && !Files.isDirectory(dir.resolve("deploy/monitoring"))) {
            dir = dir.getParent();
        }
        assertThat(dir)
                .as("deploy/monitoring above %s", Path.of("").toAbsolutePath())
                .isNotNull();
        return dir.resolve("deploy/monitoring");
    }

    record Run(int exit, String output) {}

    static Run promtool(Path workDir, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("promtool"));
        command.addAll(List.of(args));
        Process p;
        try {
            p = new ProcessBuilder(command)
                    .directory(workDir.toFile())
                    .redirectErrorStream(true)
                    .start();
        } catch (IOException e) {
            throw new AssertionError(
                    "promtool is not installed: run deploy/install-deps.sh (Debian package prometheus)", e);
        }
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(60, TimeUnit.SECONDS))
                .as("promtool %s ends", command)
                .isTrue();
        return new Run(p.exitValue(), out);
    }

    @Test
    void theAlertRulesPassPromtoolAndTheirUnitTests() throws Exception {
        Path dir = monitoring().resolve("prometheus");

        Run check = promtool(dir, "check", "rules", "tidemark-alerts.yml");
        Run test = promtool(dir, "test", "rules", "tidemark-alerts.test.yml");

        assertThat(check.exit()).as(check.output()).isZero();
        assertThat(test.exit()).as(test.output()).isZero();
        assertThat(test.output()).contains("SUCCESS");
    }

    @Test
    void aRuleFilePromtoolRejectsFailsTheCheck() throws Exception {
        Files.writeString(
                tmp.resolve("bad.yml"),
                "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(tidemark_jobs_failed_total[5m]\n");

        Run check = promtool(tmp, "check", "rules", "bad.yml");

        assertThat(check.exit()).isNotZero();
        assertThat(check.output()).contains("parse");
    }

    /** Every expression of the dashboard, its Grafana variables replaced by values PromQL accepts. */
    static List<String> dashboardExpressions() throws IOException {
        JsonNode dashboard = new ObjectMapper()
                .readTree(monitoring().resolve("grafana/tidemark.json").toFile());
        List<String> out = new ArrayList<>();
        collect(dashboard.path("panels"), out);
        return out;
    }

    private static void collect(JsonNode panels, List<String> out) {
        for (JsonNode panel : panels) {
            for (JsonNode target : panel.path("targets")) {
                out.add(target.path("expr").asText());
            }
            collect(panel.path("panels"), out);
        }
    }

    @Test
    void everyDashboardQueryIsValidPromQl() throws Exception {
        List<String> exprs = dashboardExpressions();
        StringBuilder rules = new StringBuilder("groups:\n  - name: dashboard\n    rules:\n");
        for (int i = 0; i < exprs.size(); i++) {
            String expr = exprs.get(i)
                    .replace("$__rate_interval", "5m")
                    .replace("$instance", ".*")
                    .replace("$vm", ".*")
                    .replace("$target", ".*");
            assertThat(expr).as("a variable left in %s", exprs.get(i)).doesNotContain("$");
            rules.append("      - record: tidemark:dashboard_query_")
                    .append(i)
                    .append("\n        expr: '")
                    .append(expr.replace("'", "''"))
                    .append("'\n");
        }
        Files.writeString(tmp.resolve("dashboard.yml"), rules);

        Run check = promtool(tmp, "check", "rules", "dashboard.yml");

        assertThat(exprs).hasSizeGreaterThan(25).allSatisfy(e -> assertThat(e).isNotBlank());
        assertThat(check.exit()).as(check.output() + "\n" + rules).isZero();
        assertThat(check.output()).contains("SUCCESS: " + exprs.size() + " rules found");
    }

    /** The metric names of a scrape of an engine that has seen one of everything. */
    static Set<String> exported() {
        FakeClock clock = new FakeClock(T0);
        EngineMetrics metrics = new EngineMetrics(clock);
        EventBus bus = metrics.metering(new RecordingEventBus());
        SnapshotJob job = new SnapshotJob("vm", "hv1", "p", Trigger.schedule("p"), List.of("s3"), T0);
        RestorePointCreated created = new RestorePointCreated("vm", "rp", "p", List.of("s3"), T0, 1, 1);
        metrics.meteringJobs((t, e) -> {}).handle("jobs", new Event("e0", "j1", T0, job));
        metrics.meteringReplication("s3", (t, e) -> {})
                .handle(Topics.RESTORE_POINTS, new Event("e1", "j1", T0, created));
        try {
            metrics.meteringReplication("s3", (t, e) -> {
                        throw new io.tidemark.core.RetriableException("503");
                    })
                    .handle(Topics.RESTORE_POINTS, new Event("e1", "j1", T0, created));
        } catch (io.tidemark.core.RetriableException expected) {
            // counted as the target's error
        }
        bus.publish("jobs", "vm", new Event("e2", "j2", T0, job));
        bus.publish(Topics.RESTORE_POINTS, "vm", new Event("e3", "j1", T0, created));
        bus.publish(
                Topics.JOB_STATUS,
                "vm",
                new Event("e4", "j1", T0, JobFailed.of("vm", "capture", FailureReason.VM_BUSY, "busy", true)));
        bus.publish(
                Topics.REPLICATION, "vm", new Event("e5", "j1", T0, new ReplicaCommitted("vm", "rp", "s3", T0, 1, 1)));
        metrics.metering(new Hypervisor() {
                    @Override
                    public List<VmInfo> list() {
                        return List.of();
                    }

                    @Override
                    public Capture capture(CaptureRequest request) {
                        return null;
                    }

                    @Override
                    public void close() {}
                })
                .capture(new CaptureRequest("vm", Optional.empty(), "tm-1", Path.of("/tmp")));
        Reconciler.TargetState s3 = new Reconciler.TargetState(
                "s3",
                Optional.of(T0),
                false,
                Optional.of("down"),
                Optional.empty(),
                Map.of("vm", 1),
                Optional.of(T0),
                0,
                Optional.empty(),
                1);
        metrics.observe(() -> Map.of("s3", s3), new EngineHealth(List::of, () -> Map.of("s3", s3), "hv1", clock));
        metrics.observeBus(() -> List.of(new EventBus.SubscriptionState(
                "tidemark-worker-hv1",
                List.of("jobs"),
                true,
                0,
                Optional.empty(),
                Optional.empty(),
                java.util.OptionalLong.of(0))));
        String text = metrics.scrape()
                + tierSweepMetrics()
                + MetricsServer.renderDrills(List.of())
                + MetricsServer.renderTargets(Map.of(), T0)
                + MetricsServer.renderBudgets(
                        List.of(new io.tidemark.replicator.Pruner.BudgetUse("local", "vm", "p", 2, 1)))
                + MetricsServer.render(new io.tidemark.scheduler.RpoTracker(
                        io.tidemark.policies.PolicySet.of(), new io.tidemark.scheduler.InMemoryInventory(), clock));
        Set<String> names = new TreeSet<>();
        Matcher m = Pattern.compile("(?m)^(?:# HELP )?([a-z_]+)").matcher(text);
        while (m.find()) {
            names.add(m.group(1));
        }
        return names;
    }

    @Test
    void everyMetricTheRulesTheDashboardAndTheZabbixTemplateNameIsExported() throws Exception {
        Set<String> exported = exported();
        Set<String> named = new TreeSet<>();
        for (Path f : List.of(
                monitoring().resolve("prometheus/tidemark-alerts.yml"),
                monitoring().resolve("grafana/tidemark.json"),
                monitoring().resolve("zabbix/tidemark_template.yaml"))) {
            Matcher m = METRIC.matcher(Files.readString(f));
            while (m.find()) {
                named.add(m.group(1));
            }
        }
        named.removeIf(n -> n.startsWith("tidemark_dashboard")); // not a metric

        assertThat(named).hasSizeGreaterThan(20);
        assertThat(exported).containsAll(named);
    }

    @Test
    void theZabbixTemplateIsA60ExportWithATriggerForEveryAlertRule() throws Exception {
        JsonNode export = new ObjectMapper(new com.fasterxml.jackson.dataformat.yaml.YAMLFactory())
                .readTree(monitoring().resolve("zabbix/tidemark_template.yaml").toFile())
                .path("zabbix_export");
        JsonNode template = export.path("templates").path(0);
        String rules = Files.readString(monitoring().resolve("prometheus/tidemark-alerts.yml"));
        String text = export.toString();
        Set<String> keys = new TreeSet<>();
        List<String> expressions = new ArrayList<>();
        template.path("items").forEach(i -> {
            keys.add(i.path("key").asText());
            i.path("triggers").forEach(t -> expressions.add(t.path("expression").asText()));
        });
        template.path("discovery_rules").forEach(r -> r.path("item_prototypes").forEach(i -> {
            keys.add(i.path("key").asText());
            i.path("trigger_prototypes")
                    .forEach(t -> expressions.add(t.path("expression").asText()));
        }));
        export.path("triggers")
                .forEach(t -> expressions.add(t.path("expression").asText()));

        assertThat(export.path("version").asText()).isEqualTo("6.0");
        assertThat(template.path("discovery_rules"))
                .extracting(r -> r.path("key").asText())
                .contains("tidemark.rpo.discovery", "tidemark.vm.discovery", "tidemark.target.discovery");
        Matcher alerts = Pattern.compile("alert: (\\w+)").matcher(rules);
        int n = 0;
        while (alerts.find()) {
            n++;
            assertThat(text.contains("Alert " + alerts.group(1) + ":"))
                    .as("a Zabbix trigger for %s", alerts.group(1))
                    .isTrue();
        }
        assertThat(n).isEqualTo(12);
        // every trigger names this template and only items it defines
        Matcher ref = Pattern.compile("/([^/]+)/([a-z_.]+(?:\\[[^\\]]*\\])?)").matcher(String.join("\n", expressions));
        while (ref.find()) {
            assertThat(ref.group(1)).isEqualTo(template.path("template").asText());
            assertThat(keys).as("the item of %s", ref.group()).contains(ref.group(2));
        }
        assertThat(expressions).hasSizeGreaterThanOrEqualTo(10);
    }

    /** The {@code tidemark_tier_*} families of a tier sweep that ran once, as the engine renders them. */
    private static String tierSweepMetrics() {
        io.tidemark.policies.Policy tiered = io.tidemark.policies.Policy.of(
                        "db",
                        io.tidemark.policies.VmSelector.ofNames("db-1"),
                        io.tidemark.policies.Schedule.Interval.every(java.time.Duration.ofHours(1)),
                        java.time.Duration.ofHours(2),
                        List.of("t"))
                .withTiers(new io.tidemark.policies.Tiers(List.of(
                        new io.tidemark.policies.Tier("warm", "t", Optional.empty(), java.time.Duration.ofDays(30)),
                        new io.tidemark.policies.Tier(
                                "cold", "t", Optional.of("GLACIER"), java.time.Duration.ofDays(365)))));
        io.tidemark.replicator.TierSweeps sweeps = new io.tidemark.replicator.TierSweeps(
                Map.of("t", new io.tidemark.targets.file.FileObjectTarget(java.nio.file.Path.of("/nonexistent-tier"))),
                t -> {
                    throw new IllegalStateException("no repository");
                },
                io.tidemark.policies.PolicySet.of(tiered),
                java.time.Clock.systemUTC(),
                "test",
                io.tidemark.replicator.TierSweep.Settings.DEFAULT);
        sweeps.round(); // a file target has no storage classes: the sweep fails, so every family shows
        return sweeps.metrics();
    }
}
