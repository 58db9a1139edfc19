package io.tidemark.scheduler.hook;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.scheduler.Inventory;
import io.tidemark.scheduler.Placement;
import io.tidemark.scheduler.SnapshotJobs;
import io.tidemark.scheduler.VmPlacement;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one path of every pre-deploy hook, whichever entry point it came through, and of manual
 * backups ({@link #backup}).
 *
 * <p>{@link #submit} finds the policies whose {@code triggers.pre-deploy.apps} lists the hook's
 * app, resolves their VMs through the {@link Inventory}, and publishes one {@link SnapshotJob} per
 * VM to {@code Topics.jobs(host)}, keyed by the VM, with trigger {@code hook} (app, commit,
 * pipeline) and job id {@link #jobId}. The same hook twice therefore publishes the same job ids,
 * and the worker, which deduplicates by job id, makes one set of restore points. A VM selected by
 * several such policies gets one job, under the first policy by name, replicating to the union of
 * their targets.
 *
 * <p>{@link #await} waits for a {@link WaitLevel} on the events of {@code tidemark.job-status},
 * {@code tidemark.restore-points} and {@code tidemark.replication}, watched by a subscription that
 * {@link #submit} opened, in a consumer group of its own, before it published the first job.
 *
 * <p>Thread-safe; {@link #setPolicies} may be called while hooks are submitted.
 */
public final class HookService implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(HookService.class);
    private static final List<String> OUTCOME_TOPICS =
            List.of(Topics.JOB_STATUS, Topics.RESTORE_POINTS, Topics.REPLICATION);

    private final Inventory inventory;
    private final EventBus bus;
    private final Clock clock;
    private volatile PolicySet policies;
    /** The watches of submissions still waiting; every outcome event is offered to each. */
    private final Set<OutcomeWatch> watches = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** How many manual backup requests {@link #backup} remembers for repeats. */
    static final int REMEMBERED_BACKUPS = 256;

    /** A published manual backup job and the registered watch on its outcome. */
    private record Remembered(Submission.Job job, OutcomeWatch watch, EventBus.Subscription registration) {}

    /** Manual backups by job id, oldest first; guarded by itself. */
    private final Map<String, Remembered> backups = new java.util.LinkedHashMap<>();

    /** One subscription to the outcome topics for all submissions, opened with the first wait. */
    private EventBus.Subscription outcomes;

    public HookService(PolicySet policies, Inventory inventory, EventBus bus, Clock clock) {
        this.policies = Objects.requireNonNull(policies, "policies");
        this.inventory = Objects.requireNonNull(inventory, "inventory");
        this.bus = Objects.requireNonNull(bus, "bus");
        this.clock = Objects.requireNonNull(clock, "clock");
    }

    /** Replaces the policies; hooks submitted from now on use the new ones. */
    public void setPolicies(PolicySet policies) {
        this.policies = Objects.requireNonNull(policies, "policies");
    }

    /** The apps some policy lists under {@code triggers.pre-deploy.apps}, sorted. */
    public List<String> knownApps() {
        Set<String> apps = new TreeSet<>();
        policies.policies().forEach(p -> apps.addAll(p.preDeployApps()));
        return List.copyOf(apps);
    }

    /**
     * The job id of the hook's job for {@code vm}: {@code hook/<app>/<commit>/<pipeline>/<vm>}, each
     * part with every character but ASCII letters, digits, {@code .}, {@code _} and {@code -}
     * percent-encoded (UTF-8), so distinct hooks never share an id.
     */
    public static String jobId(String app, String commit, String pipeline, String vm) {
        return TriggerKind.HOOK.spelling() + "/" + safe(app) + "/" + safe(commit) + "/" + safe(pipeline) + "/"
                + safe(vm);
    }

    /**
     * Publishes the hook's snapshot jobs. When {@code hook.waitLevel()} is present, the returned
     * submission watches their outcome events (opened before the first publish) until it is closed;
     * the caller closes it.
     *
     * @throws UnknownAppException if no policy lists the app
     * @throws PermanentException if the policies that list it select no VM the inventory knows
     * @throws RetriableException if the inventory or the bus is unavailable; some jobs may have been
     *     published, and submitting the same hook again publishes the same job ids
     */
    public Submission submit(PreDeployHook hook) {
        Objects.requireNonNull(hook, "hook");
        PolicySet current = policies;
        List<Policy> listing = current.policies().stream()
                .filter(p -> p.triggeredBeforeDeployOf(hook.app()))
                .toList();
        if (listing.isEmpty()) {
            throw new UnknownAppException(hook.app(), knownApps());
        }
        Instant submittedAt = clock.instant();
        List<Submission.Job> jobs = plan(hook, listing);
        OutcomeWatch watch = hook.waitLevel().isPresent() ? new OutcomeWatch(jobs, submittedAt, clock) : null;
        EventBus.Subscription subscription = watch == null ? null : register(watch);
        Submission submission = new Submission(
                "pre-deploy hook app=" + hook.app() + " commit=" + hook.commit() + " pipeline=" + hook.pipeline(),
                submittedAt,
                jobs,
                watch,
                subscription);
        Trigger trigger = new Trigger(
                TriggerKind.HOOK, Map.of("app", hook.app(), "commit", hook.commit(), "pipeline", hook.pipeline()));
        try {
            for (Submission.Job job : jobs) {
                bus.publish(
                        Topics.jobs(job.host()),
                        job.vm(),
                        Event.of(
                                job.jobId(),
                                clock.instant(),
                                SnapshotJobs.of(
                                        current.find(job.policy()).orElseThrow(),
                                        job.vm(),
                                        job.host(),
                                        trigger,
                                        job.targets(),
                                        submittedAt)));
            }
        } catch (RuntimeException e) { // the caller learns of the failure; the watch must not outlive it
            submission.close();
            throw e;
        }
        log.info(
                "pre-deploy hook app={} commit={} pipeline={}: published {} job(s) for {}",
                hook.app(),
                hook.commit(),
                hook.pipeline(),
                jobs.size(),
                jobs.stream().map(Submission.Job::vm).toList());
        return submission;
    }

    /**
     * Publishes the one snapshot job of a manual backup: for {@code request.vm()}, under the named
     * policy or the first by name that selects the VM, replicating to that policy's targets, with
     * trigger {@code manual} (attribute {@code requestId}) and job id {@link #manualJobId}. The
     * returned submission always watches the job's outcome.
     *
     * <p>Idempotent by request id: the last {@link #REMEMBERED_BACKUPS} requests are remembered with
     * the watch on their job, and a repeat of one publishes nothing and waits on that watch (a job
     * that failed answers its failure again: a new request id asks for a new attempt). After a
     * restart, a repeat publishes the same job id again, and the worker, which deduplicates by job
     * id, makes no second restore point.
     *
     * @throws UnknownVmException if the inventory does not know the VM
     * @throws PolicyMismatchException if no policy selects the VM, or the named one does not
     * @throws RetriableException if the inventory or the bus is unavailable; submitting the same
     *     request again publishes the same job id
     */
    public Submission backup(BackupRequest request) {
        Objects.requireNonNull(request, "request");
        String jobId = manualJobId(request.requestId(), request.vm());
        synchronized (backups) {
            Remembered known = backups.get(jobId);
            if (known != null) {
                log.info(
                        "{}: job {} was published before; waiting for it, publishing nothing",
                        request.describe(),
                        jobId);
                return new Submission(request.describe(), clock.instant(), List.of(known.job()), known.watch(), null);
            }
            Placement placement = inventory
                    .locate(request.vm())
                    .orElseThrow(() -> new UnknownVmException(
                            request.vm(),
                            inventory.all().stream()
                                    .map(VmPlacement::vm)
                                    .sorted()
                                    .toList()));
            List<Policy> selecting = policies.policies().stream()
                    .filter(p -> p.vms().matches(request.vm(), placement.labels()))
                    .sorted(java.util.Comparator.comparing(Policy::name))
                    .toList();
            List<String> names = selecting.stream().map(Policy::name).toList();
            Policy policy = request.policy()
                    .map(named -> selecting.stream()
                            .filter(p -> p.name().equals(named))
                            .findFirst()
                            .orElseThrow(() -> new PolicyMismatchException(request.vm(), named, names)))
                    .orElseGet(() -> selecting.stream()
                            .findFirst()
                            .orElseThrow(() -> new PolicyMismatchException(request.vm(), null, names)));
            Instant submittedAt = clock.instant();
            Submission.Job job =
                    new Submission.Job(request.vm(), placement.host(), policy.name(), jobId, policy.targets());
            OutcomeWatch watch = new OutcomeWatch(List.of(job), submittedAt, clock);
            EventBus.Subscription registration = register(watch); // before the publish: no outcome is missed
            Trigger trigger = new Trigger(TriggerKind.MANUAL, Map.of("requestId", request.requestId()));
            try {
                bus.publish(
                        Topics.jobs(job.host()),
                        job.vm(),
                        Event.of(
                                jobId,
                                clock.instant(),
                                SnapshotJobs.of(policy, job.vm(), job.host(), trigger, job.targets(), submittedAt)));
            } catch (RuntimeException e) { // not remembered: the same request again publishes it
                registration.close();
                throw e;
            }
            backups.put(jobId, new Remembered(job, watch, registration));
            if (backups.size() > REMEMBERED_BACKUPS) {
                var eldest = backups.entrySet().iterator();
                eldest.next().getValue().registration().close();
                eldest.remove();
            }
            log.info(
                    "{}: published job {} on host {} under policy {}",
                    request.describe(),
                    jobId,
                    job.host(),
                    policy.name());
            return new Submission(request.describe(), submittedAt, List.of(job), watch, null);
        }
    }

    /**
     * The job id of a manual backup of {@code vm}: {@code manual/<requestId>/<vm>}, each part encoded
     * as in {@link #jobId}.
     */
    public static String manualJobId(String requestId, String vm) {
        return TriggerKind.MANUAL.spelling() + "/" + safe(requestId) + "/" + safe(vm);
    }

    /**
     * Waits until every job of {@code submission} reached {@code level}, one of them failed, or
     * {@code timeout} has passed since the submission (on this service's clock). A timeout is an
     * outcome, not an exception.
     *
     * @throws IllegalStateException if the submission does not watch its outcome (it was submitted
     *     without a wait level, or is closed)
     * @throws RetriableException if the waiting thread is interrupted
     */
    public HookResult await(Submission submission, WaitLevel level, Duration timeout) {
        Objects.requireNonNull(level, "level");
        OutcomeWatch watch = submission
                .watch()
                .orElseThrow(() -> new IllegalStateException(
                        "the hook was submitted without a wait level; submit it" + " with one to await its outcome"));
        HookResult result = watch.await(level, submission.submittedAt().plus(timeout));
        log.info(
                "{}: {} {} after {} ms",
                submission.subject(),
                level.wireName(),
                result.status().wireName(),
                result.elapsed().toMillis());
        return result;
    }

    /**
     * Adds {@code watch} to the shared outcome subscription (opening it the first time): joining a
     * consumer group per hook cost ~300 ms per hook (docs/benchmarks.md). The watch is registered
     * before the jobs are published, and the group reads from its committed position, so no outcome
     * of these jobs is missed.
     */
    private EventBus.Subscription register(OutcomeWatch watch) {
        synchronized (watches) {
            if (outcomes == null) {
                outcomes = bus.subscribe("tidemark-hook-outcomes-" + UUID.randomUUID(), OUTCOME_TOPICS, (t, e) -> {
                    for (OutcomeWatch w : watches) {
                        w.handle(t, e);
                    }
                });
            }
        }
        watches.add(watch);
        return () -> watches.remove(watch);
    }

    /** How many submissions are watching their outcome now. */
    int waiting() {
        return watches.size();
    }

    /** Closes the shared outcome subscription; submissions still waiting then time out. */
    @Override
    public void close() {
        synchronized (watches) {
            if (outcomes != null) {
                outcomes.close();
                outcomes = null;
            }
        }
    }

    /** One job per VM that a listing policy selects now, in VM-name order. */
    private List<Submission.Job> plan(PreDeployHook hook, List<Policy> listing) {
        Map<String, Submission.Job> byVm = new TreeMap<>();
        for (VmPlacement vm : inventory.all()) {
            String policy = null;
            Set<String> targets = new LinkedHashSet<>();
            for (Policy p : listing) { // in name order
                if (p.vms().matches(vm.vm(), vm.labels())) {
                    policy = policy == null ? p.name() : policy;
                    targets.addAll(p.targets());
                }
            }
            if (policy != null) {
                String id = jobId(hook.app(), hook.commit(), hook.pipeline(), vm.vm());
                byVm.put(vm.vm(), new Submission.Job(vm.vm(), vm.host(), policy, id, new ArrayList<>(targets)));
            }
        }
        if (byVm.isEmpty()) {
            throw new PermanentException("app '" + hook.app() + "': the policies that list it ("
                    + String.join(", ", listing.stream().map(Policy::name).toList())
                    + ") select no VM the inventory knows now; check their vms: selectors, and that the workers"
                    + " of the VMs' hosts run and publish their inventory");
        }
        return List.copyOf(byVm.values());
    }

    private static String safe(String part) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte b : part.getBytes(StandardCharsets.UTF_8)) {
            int c = b & 0xff;
            boolean plain = (c >= 'a' && c <= 'z')
                    || (c >= 'A' && c <= 'Z')
                    || (c >= '0' && c <= '9')
                    || c == '.'
                    || c == '_'
                    || c == '-';
            if (plain) {
                out.write(c);
            } else {
                out.writeBytes(String.format(java.util.Locale.ROOT, "%%%02X", c).getBytes(StandardCharsets.US_ASCII));
            }
        }
        return out.toString(StandardCharsets.US_ASCII);
    }
}
