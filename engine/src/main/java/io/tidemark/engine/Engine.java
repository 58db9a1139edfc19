package io.tidemark.engine;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.Sleeper;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.concurrent.DaemonThreads;
import io.tidemark.core.hypervisor.HostScratch;
import io.tidemark.core.hypervisor.Hypervisor;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Passphrase;
import io.tidemark.format.RepositoryConfig;
import io.tidemark.kafka.EmbeddedKafka;
import io.tidemark.kafka.KafkaEventBus;
import io.tidemark.kafka.KafkaSettings;
import io.tidemark.kafka.SubscriptionSettings;
import io.tidemark.policies.PolicyParser;
import io.tidemark.policies.PolicySet;
import io.tidemark.recovery.PostDeployMarks;
import io.tidemark.recovery.Rollback;
import io.tidemark.replicator.BudgetWatch;
import io.tidemark.replicator.Pruner;
import io.tidemark.replicator.Reconciler;
import io.tidemark.replicator.Replicator;
import io.tidemark.replicator.TierSweep;
import io.tidemark.replicator.TierSweeps;
import io.tidemark.repository.Repository;
import io.tidemark.scheduler.BusInventory;
import io.tidemark.scheduler.Inventory;
import io.tidemark.scheduler.PolicyScheduler;
import io.tidemark.scheduler.QuartzJdbc;
import io.tidemark.scheduler.QuartzSchema;
import io.tidemark.scheduler.RpoTracker;
import io.tidemark.scheduler.hook.HookSecret;
import io.tidemark.scheduler.hook.HookServer;
import io.tidemark.scheduler.hook.HookService;
import io.tidemark.scheduler.hook.PreDeployTriggerHandler;
import io.tidemark.scheduler.hook.RollbackHandler;
import io.tidemark.targets.RetryingObjectTarget;
import io.tidemark.targets.TargetSpec;
import io.tidemark.targets.file.FileObjectTarget;
import io.tidemark.workers.BackupWorker;
import io.tidemark.workers.CaptureHooks;
import io.tidemark.workers.HostReadLimit;
import io.tidemark.workers.InventoryPublisher;
import io.tidemark.workers.JobBounds;
import io.tidemark.workers.NbdBlockSource;
import io.tidemark.workers.libvirt.LibvirtHypervisor;
import io.tidemark.workers.qmp.QmpHypervisor;
import java.nio.file.Files;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Every role in one process — scheduler, worker, replicator — wired over one event bus: what
 * {@code tidemark run} starts. With no Kafka configured it starts the embedded broker.
 */
public final class Engine implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(Engine.class);
    /** How often this host's VMs are checked for changes, and re-published in full. */
    private static final Duration INVENTORY_INTERVAL = Duration.ofSeconds(10);

    private static final Duration INVENTORY_HEARTBEAT = Duration.ofMinutes(5);
    /** How long a worker waits for another member of its host's group to leave (a Kafka session). */
    private static final Duration HOST_CLAIM_PATIENCE = Duration.ofSeconds(50);
    /** How long start-up waits for an external Kafka that does not answer yet (then exits, code 3). */
    private static final Duration KAFKA_PATIENCE = Duration.ofMinutes(5);
    /** Schedulers with their state in memory (no {@code scheduler.jdbc}): at most one per bus. */
    static final String SCHEDULERS_IN_MEMORY = "tidemark-scheduler-memory";
    /** Schedulers of a Quartz cluster ({@code scheduler.jdbc}): any number, but none in memory beside them. */
    static final String SCHEDULERS_CLUSTERED = "tidemark-scheduler-cluster";

    /** How often the policy directory is checked for changes (see {@link PolicyWatcher}). */
    static final Duration POLICY_POLL_INTERVAL = Duration.ofSeconds(5);
    /**
     * When the capacity budgets are first measured after start, and how often after that (a
     * measurement reads the index pages of every budgeted point).
     *
     * @param first the delay after start
     * @param every the delay between the end of one measurement and the start of the next
     */
    record BudgetChecks(Duration first, Duration every) {
        /** What {@code tidemark run} uses: a minute after start, then every 10 minutes. */
        static final BudgetChecks DEFAULT = new BudgetChecks(Duration.ofMinutes(1), Duration.ofMinutes(10));
    }

    private final Deque<AutoCloseable> resources = new ArrayDeque<>();
    private final EngineConfig config;
    private final KafkaEventBus bus;
    private final Repository repository;
    private final PolicyScheduler scheduler;
    private final RpoTracker rpo;
    private final MetricsServer metrics;
    private final Reconciler reconciler;
    /** This host's continuous-protection mirrors (ADR 19), where the worker runs on QMP; else null. */
    private final ContinuousMirrors continuous;
    /** The capacity budgets, measured in the background where replication runs; else null. */
    private final BudgetWatch budgets;
    /** The tier sweeps (ADR 20), run in the background where replication runs; else null. */
    private final TierSweeps tierSweeps;

    private final HookServer hookServer;
    private final EngineHealth health;
    private final Inventory inventory;
    private final EngineMetrics observed;
    private final java.util.Set<Role> roles;
    /** The newest job events per VM, for the status page (fed where this process keeps the job history). */
    private final RecentJobs recentJobs = new RecentJobs();
    /** How long a claim (host, in-memory scheduler) waits for a consumer group to empty. */
    private final Duration claimPatience;
    /** When the budget watch measures. */
    private final BudgetChecks budgetChecks;

    private BusInventory fleetInventory;
    private Supplier<List<io.tidemark.repository.DrillRecord>> drillResults = List::of;

    private Engine(
            EngineConfig config, CaptureHooks hooks, Clock clock, Duration claimPatience, BudgetChecks budgetChecks) {
        this.config = config;
        this.claimPatience = claimPatience;
        this.budgetChecks = budgetChecks;
        this.roles = config.roleSet();
        // job, byte and replication metrics from what the roles publish and are handed (docs/monitoring.md)
        this.observed = new EngineMetrics(clock);
        try {
            // cheap checks first, so bad input fails before anything starts
            PolicySet policies = new PolicyParser(clock).loadDirectory(config.policies());
            Map<String, ObjectTarget> targets = openTargets(policies);
            Optional<HookSecret> hookSecret = hookSecret();
            Optional<StatusToken> statusToken = statusToken();
            if (runs(Role.WORKER)) {
                checkQmpDir();
            }
            ObjectTarget primaryTarget = openPrimaryTarget();
            repository = openPrimary(primaryTarget, config.encryptionOrDefaults());
            MarkLocations locations = markLocations(targets);
            bus = startBus();
            Hypervisor hypervisor = null;
            BackupWorker worker = null;
            if (runs(Role.WORKER)) {
                hypervisor = openHypervisor();
                removeLeftovers(hypervisor, clock);
                claimHost();
                startInventoryPublisher(hypervisor, clock);
                worker = startWorker(hypervisor, hooks, clock);
            }
            reconciler = runs(Role.REPLICATOR) ? startReplication(targets, policies, clock) : null;
            budgets = runs(Role.REPLICATOR) ? startBudgetWatch(policies, locations, targets, clock) : null;
            tierSweeps = runs(Role.REPLICATOR) ? startTierSweeps(policies, targets, clock) : null;
            health = new EngineHealth(
                    bus::subscriptions, reconciler != null ? reconciler::states : Map::of, config.host(), clock);
            roles.forEach(r -> health.started(r.spelling()));
            // this host's VMs where it runs them (status and hooks answer for them), else the fleet's
            inventory = hypervisor != null ? startListing(hypervisor) : fleetInventory();
            continuous = hypervisor != null ? startContinuousProtection(policies, clock) : null;
            if (continuous != null) {
                startMirrorRecords(continuous, targets, primaryTarget, clock);
            }
            // a continuous policy takes no snapshots: neither fired nor measured by restore points (ADR 19)
            rpo = startRpoTracking(policies.scheduled(), locations, clock);
            metrics = startMetrics(primaryTarget, targets, clock);
            if (metrics != null && budgets != null) {
                metrics.budgets(budgets::uses);
            }
            if (metrics != null && tierSweeps != null) {
                metrics.tiers(tierSweeps::metrics);
            }
            if (metrics != null && continuous != null) {
                metrics.mirrors(continuous::metrics);
            }
            if (metrics != null && statusToken.isPresent()) {
                serveStatusPage(metrics, statusToken.get(), worker, clock);
            }
            scheduler = runs(Role.SCHEDULER) ? startScheduler(policies.scheduled(), clock) : null;
            HookService hooksService = runs(Role.SCHEDULER) ? startHookTriggers(policies, clock) : null;
            hookServer = hooksService != null
                    ? startHookServer(hookSecret, hooksService, locations, hypervisor, worker, clock)
                    : null;
            watchPolicies(policies, targets, hooksService, clock);
            log.info(
                    "engine up on host {} ({}): {} policies, {} targets{}",
                    config.host(),
                    roles.stream().map(Role::spelling).collect(java.util.stream.Collectors.joining(", ")),
                    policies.policies().size(),
                    targets.size(),
                    hypervisor != null ? ", VMs from " + hypervisor : "");
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private boolean runs(Role role) {
        return roles.contains(role);
    }

    /**
     * One worker per host: jobs of a host go to one consumer group, so a second process serving the
     * same host name would take half of them. A member left by a killed process of this machine is
     * not waited for; one elsewhere is, until its Kafka session ends.
     */
    private void claimHost() {
        bus.awaitGroupFree(
                workerGroup(),
                claimPatience,
                "another worker serves host " + config.host() + "; give each hypervisor host its own host: (or"
                        + " --host), or stop the other process first");
    }

    private String workerGroup() {
        return "tidemark-worker-" + config.host();
    }

    /** Where every VM of the fleet runs, from the inventory topic, read to its end first (shared). */
    private BusInventory fleetInventory() {
        if (fleetInventory == null) {
            BusInventory started = BusInventory.start(bus, bus::caughtUpCheck, INVENTORY_HEARTBEAT.multipliedBy(3));
            resources.push(started);
            started.awaitReady(Duration.ofSeconds(30));
            fleetInventory = started;
        }
        return fleetInventory;
    }

    /** The engine config's targets, each checked against the policies that replicate to it. */
    private Map<String, ObjectTarget> openTargets(PolicySet policies) {
        Map<String, ObjectTarget> targets = TargetSpec.openAll(config.targets());
        targets.values().forEach(resources::push);
        checkTargetsNamedByPolicies(policies, targets);
        return targets;
    }

    /** The hook secret, when the HTTP hook endpoint is on. */
    private Optional<HookSecret> hookSecret() {
        EngineConfig.HooksConfig hooksConfig = config.hooks();
        return hooksConfig != null && hooksConfig.enabled()
                ? Optional.of(hooksConfig.secret(System.getenv()))
                : Optional.empty();
    }

    private void checkQmpDir() {
        if (!config.hypervisor().isLibvirt() && !Files.isDirectory(config.qmpDir())) {
            throw new PermanentException("the QMP socket directory " + config.qmpDir() + " does not exist;"
                    + " start QEMU with -qmp unix:" + config.qmpDir() + "/<vm>.qmp,server=on,wait=off"
                    + " or pass --qmp-dir");
        }
    }

    /**
     * The primary repository every role of this process reads and writes ({@code repository:}, else
     * {@code <data>/repo}, which is created). A directory is cleared of the temporary files of
     * writers killed mid-write: this machine's dead processes' at once, other machines' (a directory
     * shared over NFS) only when old ({@link FileObjectTarget#removeLeftoverTemporaries}). A
     * configured directory must exist: a missing NFS mount must not become a host-local primary.
     */
    private ObjectTarget openPrimaryTarget() {
        if (config.primaryIsDefault()) {
            createDirectories(config.data().resolve("repo"));
        }
        ObjectTarget primaryTarget = Targets.primary(config);
        resources.push(primaryTarget);
        if (primaryTarget instanceof FileObjectTarget files) {
            int temporaries = files.removeLeftoverTemporaries();
            if (temporaries > 0) {
                log.info("removed {} temporary files that killed writers left in the primary repository", temporaries);
            }
        }
        log.info("primary repository: {}", primaryTarget.describe());
        return primaryTarget;
    }

    /**
     * The locations marks apply to ({@code all}: the primary as "local" and each target's
     * repository) and those that answered now ({@code reachable}).
     */
    private record MarkLocations(Map<String, Repository> all, Map<String, Repository> reachable) {}

    /** A target that does not answer now is not waited for (reconciliation ships to it when it does). */
    private MarkLocations markLocations(Map<String, ObjectTarget> targets) {
        Map<String, Repository> locations = new LinkedHashMap<>();
        locations.put(Pruner.LOCAL, repository);
        Map<String, Repository> reachable = new LinkedHashMap<>(locations);
        targets.forEach((name, t) -> {
            Optional<Repository> replica = replicaAtStart(name, t);
            locations.put(name, replica.orElseGet(() -> repository.replicaView(t)));
            replica.ifPresent(r -> reachable.put(name, r));
        });
        return new MarkLocations(locations, reachable);
    }

    /** The configured Kafka, or the embedded broker when none is. */
    private KafkaEventBus startBus() {
        String bootstrap = config.kafka().bootstrap();
        if (config.kafka().isEmbedded()) {
            EmbeddedKafka kafka = EmbeddedKafka.start(config.data().resolve("kafka"), 0, 0);
            resources.push(kafka);
            bootstrap = kafka.bootstrapServers();
            log.info("embedded Kafka broker on {}", bootstrap);
        }
        KafkaSettings settings = config.kafka().settings(bootstrap, System.getenv());
        KafkaEventBus kafkaBus = new KafkaEventBus(settings, SubscriptionSettings.DEFAULT, Clock.systemUTC());
        resources.push(kafkaBus);
        kafkaBus.awaitReachable(KAFKA_PATIENCE);
        log.info("Kafka: {}", settings);
        return kafkaBus;
    }

    private Hypervisor openHypervisor() {
        if (config.hypervisor().isLibvirt()) {
            Hypervisor hypervisor = new LibvirtHypervisor(config.hypervisor().uri());
            resources.push(hypervisor);
            return hypervisor;
        }
        QmpHypervisor qmpHypervisor =
                new QmpHypervisor(config.qmpDir(), config.data().resolve("state"));
        qmpHypervisor.cbwTimeout(config.worker().captureCbwTimeoutOrDefault());
        resources.push(qmpHypervisor);
        // a worker that died between freeze and thaw must not leave a guest frozen
        qmpHypervisor.thawLeftovers();
        return qmpHypervisor;
    }

    /**
     * Scratch of captures whose process is gone (a killed engine); QEMU-side leftovers go at the
     * adapter's first contact with each VM.
     */
    private void removeLeftovers(Hypervisor hypervisor, Clock clock) {
        List<java.nio.file.Path> leftovers = new java.util.ArrayList<>(
                HostScratch.removeLeftovers(config.data().resolve("work"), clock));
        // no job of this engine runs yet: an empty job directory is one a killed job made before its scratch
        leftovers.addAll(HostScratch.removeEmptyJobDirectories(config.data().resolve("work")));
        if (!leftovers.isEmpty()) {
            log.info("removed {} leftovers of earlier captures: {}", leftovers.size(), leftovers);
        }
        log.info(
                "VMs on this host: {}",
                hypervisor.list().stream().map(v -> v.name()).toList());
    }

    /** This host's VMs on the compacted inventory topic, which routes every scheduler's jobs (ADR 0003). */
    private void startInventoryPublisher(Hypervisor hypervisor, Clock clock) {
        bus.ensureCompactedTopic(Topics.INVENTORY);
        InventoryPublisher inventoryPublisher = new InventoryPublisher(
                config.host(), hypervisor, bus, clock, vm -> Map.of(), INVENTORY_INTERVAL, INVENTORY_HEARTBEAT);
        resources.push(inventoryPublisher);
        inventoryPublisher.start();
    }

    private BackupWorker startWorker(Hypervisor hypervisor, CaptureHooks hooks, Clock clock) {
        BackupWorker worker = new BackupWorker(
                config.host(),
                observed.metering(hypervisor),
                repository,
                observed.metering(bus),
                clock,
                config.data().resolve("work"),
                hooks,
                NbdBlockSource::open,
                BackupWorker.Limits.DEFAULTS
                        .withMaxConcurrentJobs(config.concurrentJobs())
                        .withBounds(JobBounds.defaults().withDeadline(config.jobDeadlineOrDefault()))
                        .withHostReadLimit(HostReadLimit.of(
                                config.worker().hostReadBytesPerSecond(),
                                config.worker().hostReadIopsPerSecond(),
                                clock,
                                Sleeper.SYSTEM))
                        .withBackupMemory(config.backupMemoryOrDefault())
                        .withBackupNice(config.worker().backupNiceOrDefault()));
        // N jobs at once, one lane per VM (jobs are keyed by VM): a VM whose job blocks holds only its own
        // lane, and the worker ends every job within its deadline; offsets are committed after each outcome
        EventBus.Subscription jobs;
        try {
            bus.ensurePartitions(Topics.jobs(config.host()), config.concurrentJobs());
            jobs = bus.subscribeByKey(
                    "tidemark-worker-" + config.host(),
                    List.of(Topics.jobs(config.host())),
                    config.concurrentJobs(),
                    observed.meteringJobs(worker::handle));
        } catch (RuntimeException e) {
            worker.close();
            throw e;
        }
        resources.push(jobs);
        // closed before its subscription: on SIGTERM the worker drains its running jobs (bounded) and cancels
        // the rest, whose deliveries stay unacknowledged; then the subscription leaves the group
        resources.push(worker);
        // what each job did, kept on disk for `tidemark jobs` across restarts (one writer per data directory)
        JobHistory history = JobHistory.open(JobHistory.directory(config.data()), JobHistory.Limits.defaults());
        resources.push(history);
        resources.push(history.subscribe(bus, config.host(), recentJobs::add));
        seedRecentJobs(clock);
        return worker;
    }

    /**
     * Continuous protection of this host's VMs that a {@code mode: continuous} policy selects (ADR
     * 19), reconciled every {@link #CONTINUOUS_ROUND} and after each policy reload; a VM that cannot
     * be protected is reported and retried, never a reason to stop. Needs QMP sockets: on a libvirt
     * host a continuous policy is reported and not applied.
     */
    private ContinuousMirrors startContinuousProtection(PolicySet policies, Clock clock) {
        if (config.hypervisor().isLibvirt()) {
            if (!policies.continuous().isEmpty()) {
                log.error(
                        "continuous policies {} are not applied on this host: continuous protection needs QEMU's"
                                + " monitor socket (hypervisor: qmp), and libvirt owns it here",
                        policies.continuous().stream().map(p -> p.name()).toList());
            }
            return null;
        }
        io.tidemark.workers.mirror.ContinuousProtection protection =
                new io.tidemark.workers.mirror.ContinuousProtection(
                        observed.metering(bus),
                        clock,
                        io.tidemark.workers.mirror.ContinuousMirror.DEFAULT_POLL,
                        io.tidemark.workers.mirror.ContinuousMirror.DEFAULT_RECONNECT_DELAY);
        ContinuousMirrors mirrors =
                new ContinuousMirrors(config.host(), inventory, config.qmpDir(), policies, protection, clock);
        // closed before the bus: supervision ends, the mirrors keep running in QEMU for the next engine
        resources.push(mirrors);
        mirrors.start(CONTINUOUS_ROUND);
        return mirrors;
    }

    /**
     * Writes each mirrored VM's state record (ADR 22) to the targets its continuous policy names
     * ({@code targets:}), else to the primary repository, where {@code dr failover} reads it.
     */
    private void startMirrorRecords(
            ContinuousMirrors mirrors, Map<String, ObjectTarget> targets, ObjectTarget primary, Clock clock) {
        io.tidemark.workers.mirror.MirrorRecorder recorder = new io.tidemark.workers.mirror.MirrorRecorder(
                mirrors::states,
                vm -> mirrors.policyOf(vm)
                        .map(p -> new io.tidemark.workers.mirror.MirrorRecorder.Destination(
                                p.name(),
                                p.targets().isEmpty()
                                        ? List.of(primary)
                                        : p.targets().stream()
                                                .filter(targets::containsKey)
                                                .map(targets::get)
                                                .toList())),
                clock,
                io.tidemark.workers.mirror.MirrorRecorder.DEFAULT_HEARTBEAT);
        resources.push(recorder);
        recorder.start();
    }

    /** The restore-point RPO rows and the mirrors' {@code dr-mirror} rows, for the status page. */
    private static List<RpoTracker.Status> withMirrors(
            List<RpoTracker.Status> points, List<RpoTracker.Status> mirrors) {
        List<RpoTracker.Status> all = new java.util.ArrayList<>(points);
        all.addAll(mirrors);
        return all;
    }

    /** How often the continuous-protection loop compares this host's mirrors with the policies. */
    static final Duration CONTINUOUS_ROUND = Duration.ofSeconds(10);

    /** This host's continuous-protection mirrors, if the worker runs here on QMP (tests, status). */
    Optional<ContinuousMirrors> continuousMirrors() {
        return Optional.ofNullable(continuous);
    }

    private Reconciler startReplication(Map<String, ObjectTarget> targets, PolicySet policies, Clock clock) {
        Replicator replicator = new Replicator(repository, targets, observed.metering(bus), clock, 8);
        resources.push(replicator);
        // one consumer group per target: each progresses, lags and retries on its own
        for (String target : replicator.targetNames()) {
            resources.push(bus.subscribe(
                    "tidemark-replicator-" + target,
                    List.of(Topics.RESTORE_POINTS),
                    observed.meteringReplication(target, replicator.handlerFor(target))));
        }
        // events make replication fast, the reconciliation makes it right: what a target lacks
        // (dead-lettered, missed in an outage, older than the target) is shipped in the background
        Reconciler started = new Reconciler(replicator, policies, clock, Reconciler.Settings.defaults());
        resources.push(started);
        started.start();
        return started;
    }

    /**
     * Status, metrics, the watchdog and the hooks read this host's VMs from memory; listing the
     * hypervisor (which asks every VM) runs on a thread of its own.
     */
    private ListedInventory startListing(Hypervisor hypervisor) {
        ListedInventory listed = new ListedInventory(new HypervisorInventory(config.host(), hypervisor));
        listed.refresh();
        return listed;
    }

    private RpoTracker startRpoTracking(PolicySet policies, MarkLocations locations, Clock clock) {
        RpoTracker tracker = new RpoTracker(policies, inventory, clock);
        RpoSources.seed(tracker, locations.reachable());
        // a target that does not answer now: the newest point it held, as the last life knew it
        java.util.Set<String> unreadable =
                new java.util.HashSet<>(locations.all().keySet());
        unreadable.removeAll(locations.reachable().keySet());
        java.util.Set<String> measuredBefore = RpoSources.seedRemembered(tracker, rpoState(), unreadable);
        // a VM the last life measured stays measured, though it cannot be listed right now (socket away)
        tracker.measureRemembered(measuredBefore);
        tracker.refreshInventory();
        ScheduledExecutorService listing =
                Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("vm-listing"));
        resources.push(listing::shutdownNow);
        listing.scheduleWithFixedDelay(this::refreshListing, 10, 10, TimeUnit.SECONDS);
        resources.push(bus.subscribe(
                "tidemark-rpo-" + config.host(), List.of(Topics.RESTORE_POINTS, Topics.REPLICATION), tracker::handle));
        ScheduledExecutorService watchdog =
                Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("rpo-watchdog"));
        resources.push(watchdog::shutdownNow);
        watchdog.scheduleWithFixedDelay(this::checkRpo, 5, 5, TimeUnit.SECONDS);
        return tracker;
    }

    /** The metrics endpoint, when an address is configured; else null. */
    private MetricsServer startMetrics(ObjectTarget primaryTarget, Map<String, ObjectTarget> targets, Clock clock) {
        if (config.metrics() == null || config.metrics().isBlank()) {
            return null;
        }
        // read with a time bound each round, as the targets are: without the retry wrapper of an S3 or RADOS primary
        ObjectTarget primaryRaw = primaryTarget instanceof RetryingObjectTarget r ? r.delegate() : primaryTarget;
        DrillResults.Background drills =
                DrillResults.inBackground(primaryRaw, targets, Duration.ofSeconds(30), Duration.ofSeconds(10));
        resources.push(drills);
        drillResults = drills;
        Supplier<Map<String, Reconciler.TargetState>> targetStates = reconciler != null ? reconciler::states : Map::of;
        observed.observe(targetStates, health);
        observed.observeBus(bus::subscriptions);
        MetricsServer server =
                new MetricsServer(address(config.metrics()), rpo, drills, health, targetStates, clock, observed);
        resources.push(server);
        log.info("metrics on http://{}:{}/metrics", config.metrics().replaceFirst(":[0-9]*$", ""), server.port());
        return server;
    }

    /** The scheduler routes by where VMs run now, on any host: the inventory topic, read to its end first. */
    private PolicyScheduler startScheduler(PolicySet policies, Clock clock) {
        boolean clustered = config.scheduler() != null && config.scheduler().jdbc() != null;
        claimScheduling(clustered);
        java.util.Properties quartz = new java.util.Properties();
        if (clustered) {
            QuartzJdbc jdbc = config.scheduler().jdbc().quartz(System.getenv());
            int before = QuartzSchema.ensure(jdbc); // creates or upgrades the tables; names what is wrong
            log.info("scheduler: Quartz cluster {} (schema version {}, was {})", jdbc, QuartzSchema.VERSION, before);
            quartz = jdbc.properties();
        }
        PolicyScheduler started =
                PolicyScheduler.start(policies, fleetInventory(), observed.metering(bus), clock, quartz);
        resources.push(started);
        return started;
    }

    /**
     * A scheduler with its state in memory fires every policy itself, so it must be the only
     * scheduler on the bus; schedulers of a Quartz cluster share the firings, but not with one in
     * memory. Each kind holds a consumer group of its own while it runs ({@link
     * #SCHEDULERS_IN_MEMORY}, {@link #SCHEDULERS_CLUSTERED}); a start that finds the group it must
     * not share in use (after waiting out a killed process's session) is refused, before anything
     * fires. Two in-memory schedulers started within the same second may both pass the check.
     */
    private void claimScheduling(boolean clustered) {
        String configure = "configure scheduler.jdbc (a Quartz cluster on PostgreSQL, docs/configuration.md) on every"
                + " scheduler process, or run a single scheduler";
        bus.awaitGroupFree(
                SCHEDULERS_IN_MEMORY,
                claimPatience,
                (clustered
                                ? "a scheduler with its state in memory (no scheduler.jdbc) runs on this bus and fires"
                                        + " every policy itself, so this one's firings would double its; "
                                : "another scheduler with its state in memory runs on this bus, and two would fire"
                                        + " every policy twice; ")
                        + configure);
        if (!clustered) {
            bus.awaitGroupFree(
                    SCHEDULERS_CLUSTERED,
                    claimPatience,
                    "schedulers of a Quartz cluster (scheduler.jdbc) run on this bus, and this one, with its state in"
                            + " memory, would fire every policy again; " + configure);
        }
        // membership only: the group's consumer reads the (quiet) trigger topic and ignores it
        resources.push(bus.subscribe(
                clustered ? SCHEDULERS_CLUSTERED : SCHEDULERS_IN_MEMORY,
                List.of(Topics.TRIGGERS),
                (topic, event) -> {}));
    }

    /**
     * Pre-deploy hooks from the Kafka trigger topic, always. They cover the VMs of this host's
     * inventory, so every engine handles every trigger (a group per host).
     */
    private HookService startHookTriggers(PolicySet policies, Clock clock) {
        HookService hooksService = new HookService(policies, inventory, bus, clock);
        resources.push(hooksService);
        resources.push(bus.subscribe(
                "tidemark-hook-triggers-" + config.host(),
                List.of(Topics.TRIGGERS),
                new PreDeployTriggerHandler(hooksService)));
        return hooksService;
    }

    /**
     * The HTTP hook endpoint, when a secret is configured (else null): pre-deploy, post-deploy marks
     * and, when the hypervisor can switch disks, rollback.
     */
    private HookServer startHookServer(
            Optional<HookSecret> hookSecret,
            HookService hooksService,
            MarkLocations locations,
            Hypervisor hypervisor,
            BackupWorker worker,
            Clock clock) {
        if (hookSecret.isEmpty()) {
            log.info(
                    "pre-deploy hook endpoint off (configure hooks: or set {})",
                    EngineConfig.HooksConfig.DEFAULT_SECRET_ENV);
            return null;
        }
        // rollback switches disks under the VM's QEMU: only where this process runs the host's worker
        Optional<RollbackHandler> rollback = hypervisor == null
                ? Optional.empty()
                : Rollback.on(repository, hypervisor, worker, clock).map(r -> r);
        HookServer server = HookServer.start(
                config.hooks().socketAddress(),
                hooksService,
                Optional.of(new PostDeployMarks(locations.all(), clock)),
                rollback,
                hookSecret.get(),
                clock);
        resources.push(server);
        log.info(
                "deploy hooks on http://{}:{}{} and {}",
                server.address().getHostString(),
                server.port(),
                HookServer.PATH,
                HookServer.POST_DEPLOY_PATH);
        return server;
    }

    /** The status page's token, when the page is on; it needs the metrics listener. */
    private Optional<StatusToken> statusToken() {
        EngineConfig.StatusPageConfig page = config.statusPage();
        if (page == null || !page.enabled()) {
            return Optional.empty();
        }
        if (config.metrics() == null || config.metrics().isBlank()) {
            throw new PermanentException("statusPage: is served on the metrics listener, which is off (metrics:"
                    + " \"\"); set metrics: to an address such as 127.0.0.1:9464, or remove statusPage:");
        }
        return Optional.of(page.token());
    }

    /** The status page on the metrics listener: {@code /status} and {@code /status.json}, from memory. */
    private void serveStatusPage(MetricsServer server, StatusToken token, BackupWorker worker, Clock clock) {
        if (worker == null) {
            recentJobs.noHistory(); // no job history in this process: the page shows RPO, targets and drills
        }
        StatusPage page = new StatusPage(new StatusPage.Sources(
                config.host(),
                continuous == null ? rpo::status : () -> withMirrors(rpo.status(), continuous.statusRows()),
                reconciler != null ? reconciler::states : Map::of,
                drillResults,
                health::components,
                worker != null ? worker::running : List::of,
                recentJobs,
                clock,
                continuous == null ? Map::of : continuous::locationStates,
                this::tierSweepStatuses));
        server.serve(new StatusPageHttp(token, page::view));
        log.info(
                "status page on http://{}:{}{} (token from {})",
                config.metrics().replaceFirst(":[0-9]*$", ""),
                server.port(),
                StatusPageHttp.PAGE,
                config.statusPage().tokenFile());
    }

    /**
     * The job history on disk into {@link #recentJobs}, on a thread of its own (up to 40 MiB): the
     * page answers meanwhile, without the older jobs.
     */
    private void seedRecentJobs(Clock clock) {
        Thread seed = new Thread(
                () -> {
                    try {
                        recentJobs.seed(JobHistory.read(
                                        JobHistory.directory(config.data()),
                                        clock.instant().minus(Duration.ofDays(7)))
                                .events());
                    } catch (RuntimeException e) { // the page shows what arrives from now on
                        log.warn("the status page could not read the job history: {}", e.getMessage());
                        recentJobs.noHistory();
                    }
                },
                "status-history-seed");
        seed.setDaemon(true);
        seed.start();
    }

    /** Live reload: a changed policy directory applies without a restart; an invalid one is logged. */
    private void watchPolicies(
            PolicySet policies, Map<String, ObjectTarget> targets, HookService hooksService, Clock clock) {
        PolicyWatcher watcher = new PolicyWatcher(config.policies(), new PolicyParser(clock), policies, next -> {
            checkTargetsNamedByPolicies(next, targets);
            if (scheduler != null) {
                scheduler.reload(next.scheduled());
            }
            rpo.setPolicies(next.scheduled());
            if (continuous != null) {
                continuous.setPolicies(next);
            }
            if (reconciler != null) {
                reconciler.setPolicies(next);
            }
            if (budgets != null) {
                budgets.setPolicies(next);
            }
            if (tierSweeps != null) {
                tierSweeps.setPolicies(next);
            }
            if (hooksService != null) {
                hooksService.setPolicies(next);
            }
        });
        resources.push(watcher);
        watcher.start(POLICY_POLL_INTERVAL);
    }

    /**
     * The primary repository: opened with the passphrase when one is configured, and created when the
     * location is empty (encrypted when a passphrase is configured).
     */
    private static Repository openPrimary(ObjectTarget target, EngineConfig.EncryptionConfig encryption) {
        Optional<Passphrase> passphrase = encryption.passphrase(System.getenv());
        if (passphrase.isEmpty()) {
            return Repository.openOrInit(target, RepositoryConfig.defaults());
        }
        Repository repo =
                Repository.openOrInit(target, RepositoryConfig.defaults(), passphrase.get(), encryption.iterations());
        if (!repo.encrypted()) {
            log.warn(
                    "repository {} is not encrypted: the configured passphrase is not used (encryption applies to"
                            + " repositories created with one)",
                    repo.describe());
        }
        return repo;
    }

    /**
     * {@code target}'s repository, checked once without the retry wrapper and within {@link
     * #TARGET_CHECK_AT_START}: a target holding another repository, or refusing for good (wrong bucket,
     * wrong credentials), stops the start-up; one that does not answer now (down, slow) is reported
     * and left to the reconciliation, so a restart during a target's outage still protects the VMs.
     */
    private Optional<Repository> replicaAtStart(String name, ObjectTarget target) {
        ObjectTarget raw = target instanceof RetryingObjectTarget r ? r.delegate() : target;
        java.util.concurrent.ExecutorService check =
                Executors.newSingleThreadExecutor(DaemonThreads.named("target-check-" + name));
        try {
            check.submit(() -> repository.replicaOn(raw)).get(TARGET_CHECK_AT_START.toMillis(), TimeUnit.MILLISECONDS);
            return Optional.of(repository.replicaOn(target));
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof RetriableException retriable) {
                log.warn(
                        "target '{}' ({}) does not answer at start-up: {}; starting without it, its points are"
                                + " shipped when it answers (see /readyz and tidemark status)",
                        name,
                        target.describe(),
                        retriable.getMessage());
                return Optional.empty();
            }
            if (e.getCause() instanceof RuntimeException permanent) {
                throw permanent;
            }
            throw new IllegalStateException(e.getCause());
        } catch (java.util.concurrent.TimeoutException e) {
            log.warn(
                    "target '{}' ({}) did not answer within {} s at start-up; starting without it, its points"
                            + " are shipped when it answers (see /readyz and tidemark status)",
                    name,
                    target.describe(),
                    TARGET_CHECK_AT_START.toSeconds());
            return Optional.empty();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RetriableException("interrupted while checking target '" + name + "' at start-up", e);
        } finally {
            check.shutdownNow();
        }
    }

    /** How long the start-up waits for each target's first answer. */
    static final Duration TARGET_CHECK_AT_START = Duration.ofSeconds(10);

    /** Starts every role; the caller closes the engine. */
    public static Engine start(EngineConfig config, CaptureHooks hooks, Clock clock) {
        return new Engine(config, hooks, clock, HOST_CLAIM_PATIENCE, BudgetChecks.DEFAULT);
    }

    /** {@link #start}, waiting {@code claimPatience} for a claimed consumer group to empty (tests). */
    static Engine start(EngineConfig config, CaptureHooks hooks, Clock clock, Duration claimPatience) {
        return new Engine(config, hooks, clock, claimPatience, BudgetChecks.DEFAULT);
    }

    /** {@link #start}, measuring the capacity budgets on {@code budgetChecks} instead of every 10 min (tests). */
    static Engine start(EngineConfig config, CaptureHooks hooks, Clock clock, BudgetChecks budgetChecks) {
        return new Engine(config, hooks, clock, HOST_CLAIM_PATIENCE, budgetChecks);
    }

    public EventBus bus() {
        return bus;
    }

    public Repository repository() {
        return repository;
    }

    public PolicyScheduler scheduler() {
        return scheduler;
    }

    public RpoTracker rpo() {
        return rpo;
    }

    /** The port of the pre-deploy hook endpoint, if it is on. */
    public java.util.OptionalInt hookPort() {
        return hookServer == null ? java.util.OptionalInt.empty() : java.util.OptionalInt.of(hookServer.port());
    }

    /** The port of the metrics endpoint, if it is on. */
    public java.util.OptionalInt metricsPort() {
        return metrics == null ? java.util.OptionalInt.empty() : java.util.OptionalInt.of(metrics.port());
    }

    /** The reconciliation of every target with the primary. */
    public Reconciler reconciler() {
        return reconciler;
    }

    private void refreshListing() {
        try {
            if (inventory instanceof ListedInventory listed) {
                listed.refresh();
            }
            rpo.refreshInventory();
        } catch (RuntimeException e) { // the last listing stands; the next one may succeed
            log.warn("listing this host's VMs failed (the last listing stands): {}", e.getMessage());
        }
    }

    /** What the RPO tracker knew, kept for the next start (see {@link RpoSources#remember}). */
    private java.nio.file.Path rpoState() {
        return config.data().resolve("state").resolve("rpo-newest.json");
    }

    /**
     * Capacity budgets: measured on {@link #budgetChecks} ({@link BudgetChecks#DEFAULT}: a minute after
     * start, then every 10 minutes; a measurement reads the index pages of every point of the VMs that have a budget), on a thread of
     * its own; {@code BudgetExceeded} when a newest point does not fit. Only the locations that
     * answered at start are measured.
     */
    private BudgetWatch startBudgetWatch(
            PolicySet policies, MarkLocations locations, Map<String, ObjectTarget> targets, Clock clock) {
        Map<String, Repository> reachableTargets = new LinkedHashMap<>(locations.reachable());
        reachableTargets.remove(Pruner.LOCAL);
        BudgetWatch watch = new BudgetWatch(repository, reachableTargets, Targets.locks(targets), policies, clock);
        ScheduledExecutorService timer =
                Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("budget-watch"));
        resources.push(timer::shutdownNow);
        timer.scheduleWithFixedDelay(
                () -> {
                    try {
                        watch.check(bus);
                    } catch (RuntimeException e) { // the watch must outlive a failed check
                        log.warn("capacity budget check failed: {}", e.getMessage(), e);
                    }
                },
                budgetChecks.first().toMillis(),
                budgetChecks.every().toMillis(),
                TimeUnit.MILLISECONDS);
        return watch;
    }

    /**
     * Tier sweeps (ADR 20): every {@code tierSweep.every} (default 1 h, first {@code tierSweep.first}
     * after start) on a thread of its own, one target after the other, each under the target's
     * tier-sweep lock; a round does nothing while no policy's tiers name a storage class. Targets
     * down at start are opened when they answer.
     */
    private TierSweeps startTierSweeps(PolicySet policies, Map<String, ObjectTarget> targets, Clock clock) {
        Optional<Duration> every = config.tierSweep().everyOrDefault();
        if (every.isEmpty()) {
            log.info("tier sweep off (tierSweep.every: off): run tidemark tier sweep from cron instead");
            return null;
        }
        if (every.get().compareTo(TierSweep.Settings.DEFAULT.ledgerMaxGap()) > 0) {
            log.warn(
                    "tierSweep.every is {}, longer than the {} a tier ledger is trusted: every sweep will read the tag"
                            + " of every chunk; sweep more often (docs/configuration.md)",
                    every.get(),
                    TierSweep.Settings.DEFAULT.ledgerMaxGap());
        }
        TierSweeps sweeps = new TierSweeps(
                targets,
                repository::replicaOn,
                policies,
                clock,
                "engine on " + config.host() + " pid " + ProcessHandle.current().pid(),
                TierSweep.Settings.DEFAULT);
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("tier-sweep"));
        resources.push(timer::shutdownNow);
        timer.scheduleWithFixedDelay(
                () -> {
                    try {
                        if (sweeps.active()) {
                            sweeps.round();
                        }
                    } catch (RuntimeException e) { // the sweeps must outlive a failed round
                        log.warn("tier sweep round failed: {}", e.getMessage(), e);
                    }
                },
                config.tierSweep().firstOrDefault().toMillis(),
                every.get().toMillis(),
                TimeUnit.MILLISECONDS);
        return sweeps;
    }

    /** What the tier sweeps did at each target, from memory; empty where they do not run. */
    List<TierSweeps.Status> tierSweepStatuses() {
        return tierSweeps == null ? List.of() : tierSweeps.statuses();
    }

    private void checkRpo() {
        try {
            rpo.check(bus);
            health.rpoChecked();
            RpoSources.remember(rpo, rpoState());
        } catch (RuntimeException e) { // the watchdog must outlive a failed check
            log.warn("RPO check failed: {}", e.getMessage(), e);
        }
    }

    static java.net.InetSocketAddress address(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        if (colon < 0) {
            throw new PermanentException("metrics address '" + hostPort + "' must be HOST:PORT, e.g. 127.0.0.1:9464");
        }
        return new java.net.InetSocketAddress(
                hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
    }

    public EngineConfig config() {
        return config;
    }

    private static java.nio.file.Path createDirectories(java.nio.file.Path dir) {
        try {
            return Files.createDirectories(dir);
        } catch (java.io.IOException e) {
            throw new PermanentException("cannot create " + dir + ": " + e.getMessage() + "; check --data", e);
        }
    }

    private static void checkTargetsNamedByPolicies(PolicySet policies, Map<String, ObjectTarget> targets) {
        for (var p : policies.policies()) {
            for (String t : p.targets()) {
                if (!targets.containsKey(t)) {
                    throw new PermanentException(
                            p.source().map(Object::toString).orElse("policy") + ": policy '" + p.name()
                                    + "' replicates to target '" + t + "', which the engine config does not define"
                                    + " (defined: " + targets.keySet() + ")");
                }
            }
        }
    }

    @Override
    public void close() {
        if (bus != null && !resources.isEmpty()) {
            // every subscription stops polling and drains at once (each waits for its running handlers
            // up to the bus's drain time, in parallel rather than one after another); then the rest
            try {
                bus.close();
            } catch (RuntimeException e) { // close everything else whatever the bus throws
                log.warn("closing the event bus failed: {}", e.getMessage());
            }
        }
        while (!resources.isEmpty()) {
            AutoCloseable r = resources.pop();
            try {
                r.close();
            } catch (Exception e) { // close everything we opened, whatever one of them throws
                log.warn("closing {} failed: {}", r.getClass().getSimpleName(), e.getMessage());
            }
        }
    }
}
