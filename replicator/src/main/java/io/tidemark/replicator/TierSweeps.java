package io.tidemark.replicator;

import io.tidemark.core.RetriableException;
import io.tidemark.core.target.ColdStorage;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.policies.PolicySet;
import io.tidemark.repository.Repository;
import io.tidemark.repository.maintenance.EpochLock;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The engine's tier sweeps: one {@link TierSweep} per target whose policies' tiers name a storage
 * class, run one round at a time by the replicator role (ADR 20). A round sweeps every such target
 * in turn; a target that fails (down beyond its retry deadline, another sweep holding its lock) is
 * logged once when it starts failing and once when it recovers, and swept again next round. What
 * each target's last sweep did is kept in memory for metrics and status, so a scrape never waits
 * for a target. Nothing is swept when no policy has tiers with a storage class.
 */
public final class TierSweeps {

    private static final Logger log = LoggerFactory.getLogger(TierSweeps.class);

    /**
     * What the engine knows of one target's sweeps, from memory.
     *
     * @param lastAttempt when the last sweep started
     * @param lastSuccess when the last sweep that finished finished
     * @param lastError why the last sweep failed; empty when it succeeded
     * @param last what the last successful sweep did
     * @param taggedTotal chunks tagged by this process's sweeps, every class
     * @param untaggedTotal chunks untagged by this process's sweeps
     * @param rewarmedTotal archived chunks copied back by this process's sweeps
     * @param failures sweeps of this target that failed in this process
     * @param heldBy who held the target's tier-sweep lock when the last sweep found it taken
     */
    public record Status(
            String target,
            Optional<Instant> lastAttempt,
            Optional<Instant> lastSuccess,
            Optional<String> lastError,
            Optional<TierSweep.Report> last,
            Optional<Duration> lastDuration,
            long taggedTotal,
            long untaggedTotal,
            long rewarmedTotal,
            long failures,
            Optional<String> heldBy) {

        /**
         * What the last sweep came to: {@code ok}, {@code held} (another sweep, named by {@link #heldBy},
         * holds the target's tier-sweep lock: nothing is wrong unless it lasts) or {@code failing}
         * ({@link #lastError} says why); {@code pending} before the first sweep ended.
         */
        public String state() {
            if (heldBy.isPresent()) {
                return "held";
            }
            if (lastError.isPresent()) {
                return "failing";
            }
            return last.isPresent() ? "ok" : "pending";
        }

        /** Archived chunks a young point needs that the last successful sweep could not copy back yet. */
        public int rewarmPending() {
            return last.map(r -> r.rewarm().size()).orElse(0);
        }

        static Status none(String target) {
            return new Status(
                    target,
                    Optional.empty(),
                    Optional.empty(),
                    Optional.empty(),
                    Optional.empty(),
                    Optional.empty(),
                    0,
                    0,
                    0,
                    0,
                    Optional.empty());
        }
    }

    private final Map<String, ObjectTarget> targets;
    private final Function<ObjectTarget, Repository> open;
    private final Clock clock;
    private final String owner;
    private final TierSweep.Settings settings;
    private final Map<String, Status> statuses = new ConcurrentHashMap<>();
    private final Map<String, Repository> opened = new ConcurrentHashMap<>();
    private volatile PolicySet policies;

    /**
     * @param targets the engine's targets by name (opened, with their retry wrappers)
     * @param open opens the repository at a target (may fail while it is down: tried every round)
     * @param owner names this engine in the sweep lock
     */
    public TierSweeps(
            Map<String, ObjectTarget> targets,
            Function<ObjectTarget, Repository> open,
            PolicySet policies,
            Clock clock,
            String owner,
            TierSweep.Settings settings) {
        this.targets = Map.copyOf(targets);
        this.open = open;
        this.policies = policies;
        this.clock = clock;
        this.owner = owner;
        this.settings = settings;
    }

    /** The policies to sweep by from the next round (a reload). */
    public void setPolicies(PolicySet next) {
        policies = next;
    }

    /** Whether any policy's tiers name a storage class at one of the targets: else rounds do nothing. */
    public boolean active() {
        PolicySet current = policies;
        return targets.keySet().stream()
                .anyMatch(t -> !TierSweep.classesAt(current, t).isEmpty());
    }

    /** Sweeps every target that has classes to tag, one after the other; never throws for a target. */
    public void round() {
        PolicySet current = policies;
        for (Map.Entry<String, ObjectTarget> e : new java.util.TreeMap<>(targets).entrySet()) {
            String name = e.getKey();
            if (TierSweep.classesAt(current, name).isEmpty()) {
                statuses.remove(name);
                continue;
            }
            sweep(name, e.getValue(), current);
        }
    }

    private void sweep(String name, ObjectTarget target, PolicySet current) {
        Instant start = clock.instant();
        Status before = statuses.getOrDefault(name, Status.none(name));
        try {
            ColdStorage store = target.as(ColdStorage.class)
                    .orElseThrow(() -> new io.tidemark.core.PermanentException("target '" + name + "' ("
                            + target.describe() + ") is not an S3 target, but the tiers of a policy name storage"
                            + " classes there; only S3 targets have storage classes: remove the storage-class"
                            + " from the tiers at " + name + " (policy lint reports it)"));
            Repository repository = opened.computeIfAbsent(name, n -> open.apply(target));
            TierSweep.Report r = new TierSweep(name, repository, store, clock, owner, settings).run(current, start);
            Instant end = clock.instant();
            statuses.put(
                    name,
                    new Status(
                            name,
                            Optional.of(start),
                            Optional.of(end),
                            Optional.empty(),
                            Optional.of(r),
                            Optional.of(Duration.between(start, end)),
                            before.taggedTotal()
                                    + r.tagged().values().stream()
                                            .mapToLong(Integer::longValue)
                                            .sum(),
                            before.untaggedTotal() + r.untagged(),
                            before.rewarmedTotal() + r.rewarmed(),
                            before.failures(),
                            Optional.empty()));
            if (before.lastError().isPresent()) {
                log.info("tier sweep of target '{}' works again", name);
            }
            log.info(
                    "tier sweep of target '{}': {} chunks, tagged {}, untagged {}, {} tags read{}, rewarmed {},"
                            + " {} still archived ({} restore requests sent), {} ms",
                    name,
                    r.chunks(),
                    r.tagged(),
                    r.untagged(),
                    r.tagReads(),
                    r.fullRead().isEmpty() ? "" : " (all: " + r.fullRead() + ")",
                    r.rewarmed(),
                    r.rewarm().size(),
                    r.restoresRequested(),
                    Duration.between(start, end).toMillis());
            if (!r.rewarmFailures().isEmpty()) {
                log.warn(
                        "tier sweep of target '{}': {} archived chunks a young point needs could not be brought back"
                                + " yet (first: {}); tried again next round",
                        name,
                        r.rewarmFailures().size(),
                        r.rewarmFailures().get(0));
            }
        } catch (RuntimeException e) { // a round must outlive a failed target; the next round retries
            String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            if (before.lastError().isEmpty()) {
                log.warn(
                        "tier sweep of target '{}' failed ({}): {}; tried again next round, logged again only once"
                                + " it works",
                        name,
                        e instanceof RetriableException ? "transient" : "permanent",
                        why);
            } else {
                log.debug("tier sweep of target '{}' still fails: {}", name, why);
            }
            statuses.put(
                    name,
                    new Status(
                            name,
                            Optional.of(start),
                            before.lastSuccess(),
                            Optional.of(why),
                            before.last(),
                            before.lastDuration(),
                            before.taggedTotal(),
                            before.untaggedTotal(),
                            before.rewarmedTotal(),
                            before.failures() + 1,
                            e instanceof EpochLock.Held held
                                    ? Optional.of(held.holder() + " until " + held.until())
                                    : Optional.empty()));
        }
    }

    /** Each swept target's status, from memory. */
    public List<Status> statuses() {
        return new ArrayList<>(new java.util.TreeMap<>(statuses).values());
    }

    /** The {@code tidemark_tier_*} metrics families, rendered from memory; empty while nothing is swept. */
    public String metrics() {
        List<Status> all = statuses();
        if (all.isEmpty()) {
            return "";
        }
        Map<String, StringBuilder> families = new LinkedHashMap<>();
        family(
                families,
                "tidemark_tier_sweep_last_success_timestamp_seconds",
                "gauge",
                "When the last tier sweep of the target finished (unix seconds); absent before the first.");
        family(
                families,
                "tidemark_tier_sweep_ok",
                "gauge",
                "1 if the last tier sweep of the target succeeded, else 0.");
        family(
                families,
                "tidemark_tier_sweep_duration_seconds",
                "gauge",
                "How long the last successful tier sweep took.");
        family(
                families,
                "tidemark_tier_sweep_tag_reads",
                "gauge",
                "Tags the last successful tier sweep read (the rest were known from its ledger).");
        family(
                families,
                "tidemark_tier_chunks_tagged_total",
                "counter",
                "Chunks tagged for a colder class by this process's sweeps.");
        family(
                families,
                "tidemark_tier_chunks_untagged_total",
                "counter",
                "Chunks untagged because a point in a warmer tier needs them.");
        family(
                families,
                "tidemark_tier_rewarmed_total",
                "counter",
                "Archived chunks a young point needs that the sweeps copied back to the written class.");
        family(
                families,
                "tidemark_tier_rewarm_pending",
                "gauge",
                "Archived chunks a young point needs, not yet copied back (restore requested or in progress).");
        family(families, "tidemark_tier_sweep_failures_total", "counter", "Tier sweeps of the target that failed.");
        for (Status s : all) {
            String l = String.format(Locale.ROOT, "{target=\"%s\"}", s.target());
            s.lastSuccess()
                    .ifPresent(t -> line(
                            families,
                            "tidemark_tier_sweep_last_success_timestamp_seconds",
                            l,
                            String.format(Locale.ROOT, "%.3f", t.toEpochMilli() / 1000.0)));
            line(families, "tidemark_tier_sweep_ok", l, s.lastError().isEmpty() ? "1" : "0");
            s.lastDuration()
                    .ifPresent(d -> line(
                            families,
                            "tidemark_tier_sweep_duration_seconds",
                            l,
                            String.format(Locale.ROOT, "%.3f", d.toMillis() / 1000.0)));
            s.last().ifPresent(r -> line(families, "tidemark_tier_sweep_tag_reads", l, Integer.toString(r.tagReads())));
            line(families, "tidemark_tier_chunks_tagged_total", l, Long.toString(s.taggedTotal()));
            line(families, "tidemark_tier_chunks_untagged_total", l, Long.toString(s.untaggedTotal()));
            line(families, "tidemark_tier_rewarmed_total", l, Long.toString(s.rewarmedTotal()));
            s.last()
                    .ifPresent(r -> line(
                            families,
                            "tidemark_tier_rewarm_pending",
                            l,
                            Integer.toString(r.rewarm().size())));
            line(families, "tidemark_tier_sweep_failures_total", l, Long.toString(s.failures()));
        }
        StringBuilder out = new StringBuilder();
        families.values().forEach(out::append);
        return out.toString();
    }

    private static void family(Map<String, StringBuilder> families, String name, String type, String help) {
        families.put(name, new StringBuilder("# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n"));
    }

    private static void line(Map<String, StringBuilder> families, String name, String labels, String value) {
        families.get(name).append(name).append(labels).append(' ').append(value).append('\n');
    }
}
