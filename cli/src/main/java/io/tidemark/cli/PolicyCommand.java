package io.tidemark.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import io.tidemark.core.Human;
import io.tidemark.engine.EngineConfig;
import io.tidemark.format.Json;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicyDiff;
import io.tidemark.policies.PolicyException;
import io.tidemark.policies.PolicyParser;
import io.tidemark.policies.PolicyPlan;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.SizeSyntax;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
        name = "policy",
        mixinStandardHelpOptions = true,
        description = "Check policy files before they are merged.",
        subcommands = {PolicyCommand.Lint.class, PolicyCommand.Plan.class, PolicyCommand.Diff.class})
final class PolicyCommand {

    /** The clock {@code policy plan} starts from; tests replace it. */
    static Clock clock = Clock.systemUTC();

    @Command(
            name = "lint",
            mixinStandardHelpOptions = true,
            description = {
                "Check policy files and report every problem with its file, line and key.",
                "Parse policy files (or every *.yaml / *.yml in a directory) and report every problem as",
                "FILE:LINE:COLUMN: KEY: what is expected; with --config also every target a policy names that the",
                "engine config lacks, and every capacity budget smaller than one full restore point of a VM it",
                "covers (measured in the repositories the config names; without --config budgets are checked",
                "when the engine runs). Exit 0 when all are valid, 1 otherwise: fit for a pull-request check.",
                "",
                "Examples:",
                "  tidemark policy lint policies/",
                "  tidemark policy lint policies/web.yaml policies/db.yaml --config /etc/tidemark/tidemark.yaml"
            })
    static final class Lint implements Callable<Integer> {
        @Parameters(arity = "1..*", paramLabel = "PATH", description = "policy files, or directories of them")
        List<Path> paths;

        @Option(
                names = "--config",
                paramLabel = "FILE",
                description = "the engine config: also check that every target a policy replicates to is defined there")
        Path config;

        @Option(names = "--json", description = "print {\"policies\": N, \"problems\": [...]} on stdout")
        boolean json;

        @picocli.CommandLine.Mixin
        PassphraseOptions passphrase;

        @Override
        public Integer call() {
            List<io.tidemark.policies.PolicyProblem> problems = new ArrayList<>();
            List<Policy> policies = new ArrayList<>();
            PolicyParser parser = new PolicyParser();
            for (Path path : paths) {
                try {
                    if (java.nio.file.Files.isDirectory(path)) {
                        policies.addAll(parser.loadDirectory(path).policies());
                    } else {
                        policies.add(parser.parseFile(path));
                    }
                } catch (PolicyException e) {
                    problems.addAll(e.problems());
                }
            }
            if (config != null) {
                EngineConfig c = EngineConfig.load(config);
                problems.addAll(undefinedTargets(policies, c.targets().keySet()));
                if (problems.isEmpty()) {
                    problems.addAll(budgetsBelowAFullPoint(policies, c, passphrase.source(c)));
                }
            } else if (policies.stream().anyMatch(p -> !p.budgets().isEmpty())) {
                System.err.println("warning: capacity budgets are not checked against the size of a full restore"
                        + " point without --config (the engine checks them when it runs)");
            }
            if (json) {
                com.fasterxml.jackson.databind.node.ObjectNode o = Json.mapper().createObjectNode();
                o.put("policies", policies.size());
                o.set("problems", problemsJson(problems));
                JsonOutput.print(o);
                return problems.isEmpty() ? 0 : Main.EXIT_INVALID;
            }
            if (!problems.isEmpty()) {
                printProblems(new PolicyException(problems));
                return Main.EXIT_INVALID;
            }
            System.out.println(policies.size() + " policies OK in "
                    + paths.stream().map(Path::toString).collect(Collectors.joining(", "))
                    + (config != null ? "; every target they name is in " + config : ""));
            return 0;
        }

        /**
         * A problem per budget smaller than one full restore point of a VM it covers at its location,
         * measured in the repositories of {@code c} as capacity budgets count (the newest point's
         * distinct chunks): such a budget can never hold even the newest point. Locations that cannot be
         * read are skipped with a warning; a VM with no restore point there yet is not measured.
         */
        static List<io.tidemark.policies.PolicyProblem> budgetsBelowAFullPoint(
                List<Policy> policies, EngineConfig c, io.tidemark.repository.PassphraseSource passphrases) {
            if (policies.stream().allMatch(p -> p.budgets().isEmpty())) {
                return List.of();
            }
            List<io.tidemark.policies.PolicyProblem> problems = new ArrayList<>();
            Map<String, io.tidemark.core.target.ObjectTarget> targets = Map.of();
            try (io.tidemark.core.target.ObjectTarget primaryTarget = io.tidemark.engine.Targets.primary(c)) {
                if (!primaryTarget.exists(io.tidemark.format.ObjectKeys.CONFIG)) {
                    System.err.println("warning: no repository at " + primaryTarget.describe()
                            + " yet: budgets are checked once it holds restore points");
                    return List.of();
                }
                io.tidemark.repository.Repository primary =
                        io.tidemark.repository.Repository.open(primaryTarget, passphrases);
                targets = io.tidemark.targets.TargetSpec.openAll(c.targets());
                Map<String, io.tidemark.repository.Repository> replicas =
                        io.tidemark.engine.Targets.repositories(primary, targets);
                io.tidemark.replicator.Pruner.Plan plan = new io.tidemark.replicator.Pruner(
                                primary, replicas, io.tidemark.replicator.Pruner.Locks.NONE)
                        .review(PolicySet.of(policies), Instant.now());
                for (io.tidemark.replicator.Pruner.OverBudget o : plan.overBudget()) {
                    if (o.fullPointBytes() <= o.budgetBytes()) {
                        continue;
                    }
                    Policy p = policies.stream()
                            .filter(x -> x.name().equals(o.policy()))
                            .findFirst()
                            .orElseThrow();
                    problems.add(PolicyParser.problemAt(
                            p.source().orElse(Path.of(p.name())),
                            List.of("budget", o.location()),
                            "budget " + SizeSyntax.format(o.budgetBytes()) + " is smaller than one full restore"
                                    + " point of VM '" + o.vm() + "' at " + o.location() + " ("
                                    + SizeSyntax.format(o.fullPointBytes()) + ", its newest point " + o.newestPointId()
                                    + "); give at least " + SizeSyntax.format(o.fullPointBytes())
                                    + " plus room for the incrementals to keep"));
                }
            } catch (io.tidemark.core.TidemarkException e) {
                System.err.println("warning: capacity budgets not checked: " + e.getMessage());
            } finally {
                targets.values().forEach(io.tidemark.core.target.ObjectTarget::close);
            }
            return problems;
        }

        /** A problem per target a policy names that the engine config does not define. */
        static List<io.tidemark.policies.PolicyProblem> undefinedTargets(
                List<Policy> policies, java.util.Set<String> defined) {
            List<io.tidemark.policies.PolicyProblem> problems = new ArrayList<>();
            for (Policy p : policies) {
                for (String t : p.targets()) {
                    if (!defined.contains(t)) {
                        problems.add(new io.tidemark.policies.PolicyProblem(
                                p.source().orElse(Path.of(p.name())),
                                0,
                                0,
                                "targets",
                                "target '" + t + "' is not defined in the engine config (defined: "
                                        + (defined.isEmpty()
                                                ? "none"
                                                : String.join(", ", new java.util.TreeSet<>(defined)))
                                        + ")"));
                    }
                }
            }
            return problems;
        }
    }

    @Command(
            name = "plan",
            mixinStandardHelpOptions = true,
            description = {
                "Show when each policy fires, whether it meets its RPO and what it keeps.",
                "For every policy in DIR: its next 5 firings (UTC), whether its schedule can meet its RPO, and how",
                "many restore points each location keeps after --days days. Exit 0 when every policy is feasible,",
                "1 when one is not (the reason is printed) or a policy file is invalid."
            },
            footerHeading = "%nExamples:%n",
            footer = {
                "  tidemark policy plan /etc/tidemark/policies",
                "  tidemark policy plan policies/ --vms web-1 --days 90 --change-rate 500 --bandwidth 50 --json"
            })
    static final class Plan implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(index = "0", paramLabel = "DIR", description = "the policy directory")
        Path dir;

        @Option(names = "--days", defaultValue = "30", description = "days of retention to simulate (default 30)")
        int days;

        @Option(
                names = "--vms",
                split = ",",
                paramLabel = "VM",
                description = "only the policies whose names or globs cover one of these VMs (labels are not checked)")
        List<String> vms = List.of();

        @Option(
                names = "--backup-time",
                defaultValue = "1m",
                paramLabel = "DURATION",
                description = "expected duration of one backup, such as 1m or 30s (default 1m)")
        String backupTime;

        @Option(names = "--change-rate", paramLabel = "MB/h", description = "data changed per hour, in MB")
        Double changeRate;

        @Option(names = "--bandwidth", paramLabel = "MB/s", description = "bandwidth to the targets, in MB/s")
        Double bandwidth;

        @Option(
                names = "--full-size",
                paramLabel = "MB",
                description = "size of one VM's disks, in MB, for the bytes per tier (with --change-rate)")
        Double fullSize;

        @Option(names = "--json", description = "machine-readable output")
        boolean json;

        @Override
        public Integer call() throws JsonProcessingException {
            checkOptions();
            Duration backup = parseDuration(backupTime);
            PolicySet set;
            try {
                set = new PolicyParser().loadDirectory(dir);
            } catch (PolicyException e) {
                return invalid(e, json);
            }
            PolicyPlan.Options options = new PolicyPlan.Options(
                    clock.instant().truncatedTo(ChronoUnit.SECONDS),
                    5,
                    Duration.ofDays(days),
                    backup,
                    changeRate == null ? OptionalDouble.empty() : OptionalDouble.of(changeRate),
                    bandwidth == null ? OptionalDouble.empty() : OptionalDouble.of(bandwidth),
                    fullSize == null ? OptionalDouble.empty() : OptionalDouble.of(fullSize));
            List<PolicyPlan> plans = set.policies().stream()
                    .filter(this::selected)
                    .map(p -> PolicyPlan.of(p, options))
                    .toList();
            printPlans(plans);
            return plans.stream().allMatch(PolicyPlan::feasible) ? 0 : Main.EXIT_INVALID;
        }

        private void checkOptions() {
            if (days < 0) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--days must not be negative");
            }
            if ((changeRate == null) != (bandwidth == null)) {
                throw new CommandLine.ParameterException(
                        spec.commandLine(), "--change-rate and --bandwidth go together");
            }
            if (fullSize != null && (fullSize < 0 || changeRate == null)) {
                throw new CommandLine.ParameterException(
                        spec.commandLine(), "--full-size must not be negative and goes with --change-rate");
            }
            if ((bandwidth != null && bandwidth <= 0) || (changeRate != null && changeRate < 0)) {
                throw new CommandLine.ParameterException(
                        spec.commandLine(), "--bandwidth must be positive and --change-rate not negative");
            }
        }

        private void printPlans(List<PolicyPlan> plans) throws JsonProcessingException {
            if (json) {
                System.out.println(Json.mapper()
                        .writerWithDefaultPrettyPrinter()
                        .writeValueAsString(plans.stream().map(Plan::toJson).toList()));
            } else {
                plans.forEach(this::print);
                long infeasible = plans.stream().filter(p -> !p.feasible()).count();
                System.out.println(plans.size() + " policies planned, "
                        + (infeasible == 0 ? "all feasible" : infeasible + " infeasible"));
            }
            plans.stream().filter(p -> !p.feasible()).forEach(p -> p.problems()
                    .forEach(why -> System.err.println(p.policy().name() + ": " + why)));
        }

        private boolean selected(Policy p) {
            return vms.isEmpty()
                    || vms.stream().anyMatch(vm -> p.vms().matches(vm, p.vms().labels()));
        }

        private Duration parseDuration(String text) {
            try {
                return PolicyParser.parseDuration(text);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(spec.commandLine(), "--backup-time: " + e.getMessage());
            }
        }

        private void print(PolicyPlan plan) {
            Policy p = plan.policy();
            System.out.printf(
                    "%s: %s, rpo %s: %s%n",
                    p.name(),
                    describe(p.schedule()),
                    PolicyParser.formatDuration(p.rpo()),
                    plan.feasible() ? "feasible" : "INFEASIBLE: " + String.join("; ", plan.problems()));
            System.out.println("  next: "
                    + plan.nextFireTimes().stream().map(Instant::toString).collect(Collectors.joining(", ")));
            for (PolicyPlan.LocationOutlook o : plan.retention()) {
                System.out.printf(
                        "  %s: keeps %d of %d after %d days%s%s%n",
                        o.location(),
                        o.kept(),
                        o.created(),
                        days,
                        o.oldestKept().map(t -> ", oldest " + t).orElse(""),
                        o.rule().keepsAll() ? " (no retention rule: keeps all)" : "");
            }
            for (PolicyPlan.TierOutlook t : plan.tiers()) {
                System.out.printf(
                        "  tier %s (%s%s): holds %s per VM, %s enter each month%n",
                        t.tier(),
                        t.location(),
                        t.storageClass().map(c -> ", " + c).orElse(""),
                        Human.bytes(t.storedBytes()),
                        Human.bytes(t.inBytesPerMonth()));
            }
            if (plan.tiers().isEmpty() && !p.tiers().isEmpty()) {
                System.out.println("  tiers: give --change-rate (and --full-size) to estimate the bytes per tier");
            }
        }

        private static Map<String, Object> toJson(PolicyPlan plan) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("policy", plan.policy().name());
            m.put("schedule", describe(plan.policy().schedule()));
            m.put("rpo", PolicyParser.formatDuration(plan.policy().rpo()));
            m.put("feasible", plan.feasible());
            m.put("problems", plan.problems());
            m.put(
                    "nextFireTimes",
                    plan.nextFireTimes().stream().map(Instant::toString).toList());
            List<Map<String, Object>> locations = new ArrayList<>();
            for (PolicyPlan.LocationOutlook o : plan.retention()) {
                Map<String, Object> l = new LinkedHashMap<>();
                l.put("location", o.location());
                l.put("created", o.created());
                l.put("kept", o.kept());
                l.put("oldestKept", o.oldestKept().map(Instant::toString).orElse(null));
                l.put("keepsAll", o.rule().keepsAll());
                locations.add(l);
            }
            m.put("retention", locations);
            List<Map<String, Object>> tiers = new ArrayList<>();
            for (PolicyPlan.TierOutlook t : plan.tiers()) {
                Map<String, Object> tm = new LinkedHashMap<>();
                tm.put("tier", t.tier());
                tm.put("location", t.location());
                tm.put("storageClass", t.storageClass().orElse(null));
                tm.put("storedBytes", t.storedBytes());
                tm.put("inBytesPerMonth", t.inBytesPerMonth());
                tiers.add(tm);
            }
            m.put("tiers", tiers);
            return m;
        }

        private static String describe(Schedule schedule) {
            String jitter =
                    schedule.jitter().isZero() ? "" : ", jitter " + PolicyParser.formatDuration(schedule.jitter());
            if (schedule instanceof Schedule.Interval interval) {
                return "every " + PolicyParser.formatDuration(interval.every()) + jitter;
            }
            return "cron '" + ((Schedule.Cron) schedule).expression() + "'" + jitter;
        }
    }

    @Command(
            name = "diff",
            mixinStandardHelpOptions = true,
            description = {
                "List what changed between two policy directories.",
                "List the policies added, removed and changed (with the keys that changed) in DIR compared with",
                "--against DIR2, such as a pull request's checkout against main. Always exits 0 when both parse."
            },
            footerHeading = "%nExample, in a pull-request check:%n",
            footer = {
                "  git worktree add /tmp/main origin/main",
                "  tidemark policy diff policies/ --against /tmp/main/policies"
            })
    static final class Diff implements Callable<Integer> {
        @Parameters(index = "0", paramLabel = "DIR", description = "the new policy directory")
        Path dir;

        @Option(names = "--against", required = true, paramLabel = "DIR2", description = "the old policy directory")
        Path against;

        @Option(names = "--json", description = "machine-readable output")
        boolean json;

        @Override
        public Integer call() throws JsonProcessingException {
            PolicyParser parser = new PolicyParser();
            PolicySet next;
            PolicySet previous;
            try {
                next = parser.loadDirectory(dir);
                previous = parser.loadDirectory(against);
            } catch (PolicyException e) {
                return invalid(e, json);
            }
            PolicyDiff diff = PolicyDiff.between(previous, next);
            if (json) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("added", diff.added());
                m.put("removed", diff.removed());
                m.put("changed", diff.changed());
                System.out.println(
                        Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(m));
                return 0;
            }
            if (diff.isEmpty()) {
                System.out.println("no policy changed");
                return 0;
            }
            diff.added().forEach(n -> System.out.println("+ " + n));
            diff.removed().forEach(n -> System.out.println("- " + n));
            diff.changed().forEach((n, keys) -> System.out.println("~ " + n + ": " + String.join(", ", keys)));
            return 0;
        }
    }

    /**
     * Exit 1 for invalid policy files: their problems on stderr, or with {@code json} as the JSON
     * error whose {@code detail} lists them.
     */
    private static int invalid(PolicyException e, boolean json) {
        if (json) {
            throw new CommandFailure(
                    Main.EXIT_INVALID,
                    e.problems().size() + " problem(s) in the policy files",
                    java.util.Optional.of(problemsJson(e.problems())));
        }
        printProblems(e);
        return Main.EXIT_INVALID;
    }

    /** Each problem as {@code {"file", "line", "column", "key", "message"}}. */
    static com.fasterxml.jackson.databind.node.ArrayNode problemsJson(
            List<io.tidemark.policies.PolicyProblem> problems) {
        com.fasterxml.jackson.databind.node.ArrayNode a = Json.mapper().createArrayNode();
        for (io.tidemark.policies.PolicyProblem p : problems) {
            a.addObject()
                    .put("file", p.file().toString())
                    .put("line", p.line())
                    .put("column", p.column())
                    .put("key", p.keyPath())
                    .put("message", p.message());
        }
        return a;
    }

    private static void printProblems(PolicyException e) {
        e.problems().forEach(p -> System.err.println(p));
        System.err.println(e.problems().size() + " problem(s); no policy was changed");
    }
}
