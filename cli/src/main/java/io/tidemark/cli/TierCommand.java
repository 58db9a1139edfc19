package io.tidemark.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ColdStorage;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.engine.EngineConfig;
import io.tidemark.format.Json;
import io.tidemark.policies.PolicySet;
import io.tidemark.replicator.TierSweep;
import io.tidemark.repository.Repository;
import io.tidemark.targets.s3.S3ObjectTarget;
import io.tidemark.targets.s3.S3TierRules;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.function.Consumer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code tidemark tier check|apply|sweep}: the storage tiers of the policies' {@code tiers:} blocks
 * made real on S3 targets (docs/adr/0020-storage-tiers.md, docs/runbooks/cold-restore.md).
 */
@Command(
        name = "tier",
        mixinStandardHelpOptions = true,
        description = {
            "Storage tiers on S3 targets: the lifecycle rules that move chunks, and the tags that say which may move.",
            "A policy's tiers: block says how long points stay in each tier (hot 7d local, warm 90d offsite, cold",
            "GLACIER 7y offsite). Tidemark tags a chunk tidemark-tier=CLASS once every point that needs it allows",
            "CLASS (sweep), and keeps one lifecycle rule per class per target, tidemark-tier-CLASS:PREFIX, that",
            "makes the bucket move tagged chunks (apply; check reports drift). Run apply once after changing tiers,",
            "the engine sweeps on its own (engine config tierSweep:); sweep here by hand, check from monitoring.",
            "",
            "Example:  tidemark tier apply --config engine.yaml && tidemark tier sweep --config engine.yaml"
        },
        subcommands = {TierCommand.Check.class, TierCommand.Apply.class, TierCommand.Sweep.class})
final class TierCommand {

    /** The clock the sweep decides ages by; tests replace it. */
    static Clock clock = Clock.systemUTC();

    private TierCommand() {}

    /** The storage classes chunks at {@code location} may be tagged with: every tier's class but the first's. */
    static Set<String> classesAt(PolicySet policies, String location) {
        return TierSweep.classesAt(policies, location);
    }

    /** Whether any policy has a tier at {@code location}. */
    static boolean tiered(PolicySet policies, String location) {
        return policies.policies().stream()
                .anyMatch(p -> !p.tiers().at(location).isEmpty());
    }

    /** The targets to work on: {@code only}, else every target of the config, in name order. */
    static List<String> targets(EngineConfig c, String only) {
        if (only != null) {
            if (!c.targets().containsKey(only)) {
                throw new PermanentException("target '" + only + "' is not in the engine config; it defines "
                        + (c.targets().isEmpty()
                                ? "none (pass --config)"
                                : String.join(", ", c.targets().keySet())));
            }
            return List.of(only);
        }
        return new ArrayList<>(new TreeSet<>(c.targets().keySet()));
    }

    /** The S3 adapter of an opened target, or a failure saying tiers need S3 lifecycle rules. */
    /** A target whose bucket's lifecycle rules {@code check} and {@code apply} handle. */
    record RuleTarget(String name, String location, Set<String> classes, S3TierRules rules) {}

    /**
     * Hands {@code each} the targets of the engine config ({@code only}, if given) whose lifecycle
     * rules the tier commands handle, one at a time and open while it runs: every S3 target, and any
     * target a tier names a storage class at (which fails, saying it is not S3).
     */
    static void forEachRuleTarget(
            EngineOptions engine, EngineConfig c, PolicySet policies, String only, Consumer<RuleTarget> each) {
        for (String name : targets(c, only)) {
            try (ObjectTarget t = engine.open(c, name)) {
                Set<String> classes = classesAt(policies, name);
                if (t.as(S3ObjectTarget.class).isEmpty() && classes.isEmpty()) {
                    continue; // no storage class there, and no lifecycle rules to handle
                }
                each.accept(new RuleTarget(name, t.describe(), classes, new S3TierRules(s3(t, name))));
            }
        }
    }

    static S3ObjectTarget s3(ObjectTarget t, String name) {
        return t.as(S3ObjectTarget.class)
                .orElseThrow(() -> new CommandFailure(
                        1,
                        "target '" + name + "' (" + t.describe() + ") is not an S3 target, but a policy has a tier"
                                + " with a storage class there; storage classes need S3 lifecycle rules. Move the tier"
                                + " to an S3 target, or drop its storage-class (docs/adr/0020-storage-tiers.md)"));
    }

    static ObjectNode driftJson(String name, String where, Set<String> classes, S3TierRules.Drift d) {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("target", name);
        o.put("location", where);
        classes.forEach(o.putArray("storageClasses")::add);
        o.put("inSync", d.inSync());
        d.missing().forEach(o.putArray("missing")::add);
        d.changed().forEach(o.putArray("changed")::add);
        d.extra().forEach(o.putArray("extra")::add);
        d.foreign().forEach(o.putArray("foreign")::add);
        return o;
    }

    static void printDrift(String verb, String name, String where, Set<String> classes, S3TierRules.Drift d) {
        System.out.printf(
                "%s %s (%s): classes %s: %s%n",
                verb,
                name,
                where,
                classes.isEmpty() ? "(none)" : String.join(", ", classes),
                d.inSync() ? "in sync" : "drift");
        d.missing().forEach(m -> System.out.println("  missing rule for class " + m));
        d.changed().forEach(m -> System.out.println("  changed rule " + m + " (not as Tidemark wrote it)"));
        d.extra().forEach(m -> System.out.println("  extra rule " + m + " (no tier uses its class)"));
        d.foreign().forEach(m -> System.out.println("  foreign rule " + m + " (not Tidemark's)"));
    }

    @Command(
            name = "check",
            mixinStandardHelpOptions = true,
            description = {
                "Report, per S3 target, whether the bucket's lifecycle rules are the ones the policies' tiers need.",
                "Drift: a class without its rule (missing), a rule not as Tidemark wrote it (changed), a rule for a",
                "class no tier uses (extra), and rules Tidemark did not write (foreign). Changes nothing.",
                "Exit 0 when every target is in sync and has no foreign rule (with --keep-foreign, foreign rules",
                "are accepted: apply would carry them over); 2 otherwise; fix with `tidemark tier apply`.",
                "",
                "Example:  tidemark tier check --config engine.yaml --json"
            })
    static final class Check implements Callable<Integer> {
        @Mixin
        EngineOptions engine;

        @Option(names = "--target", description = "only this target of the engine config (default: every S3 target)")
        String target;

        @Option(names = "--keep-foreign", description = "accept rules Tidemark did not write (as apply --keep-foreign)")
        boolean keepForeign;

        @Option(names = "--json", description = "machine-readable output")
        boolean json;

        @Override
        public Integer call() {
            EngineConfig c = engine.engineConfig();
            PolicySet policies = engine.policies(c);
            ArrayNode all = Json.mapper().createArrayNode();
            List<S3TierRules.Drift> drifts = new ArrayList<>();
            forEachRuleTarget(engine, c, policies, target, r -> {
                S3TierRules.Drift d = r.rules().check(r.classes());
                drifts.add(d);
                if (json) {
                    all.add(driftJson(r.name(), r.location(), r.classes(), d));
                } else {
                    printDrift("tier rules of", r.name(), r.location(), r.classes(), d);
                }
            });
            boolean ok = drifts.stream()
                    .allMatch(d -> d.inSync() && (keepForeign || d.foreign().isEmpty()));
            if (json) {
                ObjectNode o = Json.mapper().createObjectNode();
                o.put("inSync", ok);
                o.set("targets", all);
                JsonOutput.print(o);
            } else {
                System.out.println(
                        ok ? "all in sync" : "drift: run `tidemark tier apply` (docs/runbooks/cold-restore.md)");
            }
            return ok ? 0 : 2;
        }
    }

    @Command(
            name = "apply",
            mixinStandardHelpOptions = true,
            description = {
                "Put the lifecycle rules the policies' tiers need on the buckets of the S3 targets.",
                "One rule per storage class per target (tidemark-tier-CLASS:PREFIX, transition only, chunks/ with the",
                "tier tag); this target's rules for classes no tier uses are removed. Rules of other Tidemark targets in the bucket are kept. S3 replaces a",
                "bucket's lifecycle configuration as a whole: when the bucket has rules Tidemark did not write, apply",
                "refuses, naming them (exit 2), unless --keep-foreign, which puts them back unchanged. Idempotent.",
                "",
                "Example:  tidemark tier apply --config engine.yaml --target offsite"
            })
    static final class Apply implements Callable<Integer> {
        @Mixin
        EngineOptions engine;

        @Option(names = "--target", description = "only this target of the engine config (default: every S3 target)")
        String target;

        @Option(
                names = "--keep-foreign",
                description = "carry rules Tidemark did not write over unchanged instead of refusing")
        boolean keepForeign;

        @Option(names = "--json", description = "machine-readable output")
        boolean json;

        @Override
        public Integer call() {
            EngineConfig c = engine.engineConfig();
            PolicySet policies = engine.policies(c);
            ArrayNode all = Json.mapper().createArrayNode();
            forEachRuleTarget(engine, c, policies, target, r -> {
                S3TierRules.Drift before = r.rules().apply(r.classes(), keepForeign);
                if (json) {
                    ObjectNode o = driftJson(r.name(), r.location(), r.classes(), before);
                    o.put("put", !before.inSync()); // whether it put rules
                    all.add(o);
                } else {
                    printDrift("tier rules of", r.name(), r.location(), r.classes(), before);
                    System.out.println(before.inSync() ? "  nothing to change" : "  put: now in sync");
                }
            });
            if (json) {
                ObjectNode o = Json.mapper().createObjectNode();
                o.set("targets", all);
                JsonOutput.print(o);
            }
            return 0;
        }
    }

    @Command(
            name = "sweep",
            mixinStandardHelpOptions = true,
            description = {
                "Tag the chunks of the S3 targets that may move to a colder storage class.",
                "Tags tidemark-tier=CLASS on a chunk when every restore point there that references it is in a tier of",
                "CLASS (a chunk shared with a younger point, or with",
                "a VM without tiers, stays where it was written). The bucket's rules (tier apply) then move tagged",
                "chunks. Only chunks are tagged: manifests and indexes stay readable, so list and show never need a",
                "cold restore. Prints per target the chunks seen, tagged per class, untagged, and chunks a young",
                "point needs that are already archived (a restore of that point will wait for a cold restore).",
                "Archived chunks a young point needs are restored and, at a later sweep, copied back (rewarm).",
                "Reads the tag only of chunks new since the last sweep or whose decision changed (a ledger under",
                "state/tier/ at the target). Holds the target's tier-sweep lock: a sweep already running there (an",
                "engine's or another command's) makes this one fail with exit 3; run it again later.",
                "Idempotent; safe while backups run.",
                "",
                "Example:  tidemark tier sweep --config engine.yaml --json"
            })
    static final class Sweep implements Callable<Integer> {
        @Mixin
        EngineOptions engine;

        @Option(
                names = "--target",
                description = "only this target of the engine config (default: every tiered target)")
        String target;

        @Option(names = "--json", description = "machine-readable output")
        boolean json;

        @Override
        public Integer call() {
            EngineConfig c = engine.engineConfig();
            PolicySet policies = engine.policies(c);
            ArrayNode all = Json.mapper().createArrayNode();
            for (String name : targets(c, target)) {
                if (!tiered(policies, name)) {
                    continue;
                }
                try (ObjectTarget t = engine.open(c, name)) {
                    ColdStorage store = t.as(ColdStorage.class).orElse(null);
                    if (store == null) {
                        if (classesAt(policies, name).isEmpty()) {
                            continue; // tiers without storage classes: nothing moves, nothing to tag
                        }
                        s3(t, name); // fails, saying why
                    }
                    Repository repo = Repository.open(t, engine.passphrases(c));
                    TierSweep.Report r = new TierSweep(name, repo, store).run(policies, clock.instant());
                    if (json) {
                        ObjectNode o = Json.mapper().createObjectNode();
                        o.put("target", name);
                        o.put("location", t.describe());
                        o.put("chunks", r.chunks());
                        ObjectNode tagged = o.putObject("tagged");
                        r.tagged().forEach(tagged::put);
                        o.put("untagged", r.untagged());
                        r.rewarm().forEach(o.putArray("rewarm")::add);
                        o.put("rewarmed", r.rewarmed());
                        o.put("restoresRequested", r.restoresRequested());
                        o.put("tagReads", r.tagReads());
                        o.put("fullRead", r.fullRead());
                        r.rewarmFailures().forEach(o.putArray("rewarmFailures")::add);
                        all.add(o);
                    } else {
                        System.out.printf(
                                "tier sweep of %s (%s): %d chunks, tagged %s, untagged %d, %d tags read (%s)%n",
                                name,
                                t.describe(),
                                r.chunks(),
                                r.tagged().isEmpty() ? "none" : r.tagged(),
                                r.untagged(),
                                r.tagReads(),
                                r.fullRead().isEmpty() ? "the rest known from the ledger" : "all: " + r.fullRead());
                        if (r.rewarmed() > 0) {
                            System.out.printf(
                                    "  %d archived chunks a young point needs were copied back to the written class%n",
                                    r.rewarmed());
                        }
                        if (!r.rewarmFailures().isEmpty()) {
                            System.out.printf(
                                    "  %d archived chunks could not be brought back this time (first: %s); the next"
                                            + " sweep tries again%n",
                                    r.rewarmFailures().size(),
                                    r.rewarmFailures().get(0));
                        }
                        if (!r.rewarm().isEmpty()) {
                            System.out.printf(
                                    "  %d chunks a young point needs are still archived (first %s; %d restore requests"
                                            + " sent now): the next sweep after their restore copies them back; until"
                                            + " then restoring that point waits for a cold restore"
                                            + " (docs/runbooks/cold-restore.md)%n",
                                    r.rewarm().size(), r.rewarm().get(0), r.restoresRequested());
                        }
                    }
                }
            }
            if (json) {
                ObjectNode o = Json.mapper().createObjectNode();
                o.set("targets", all);
                JsonOutput.print(o);
            }
            return 0;
        }
    }
}
