package io.tidemark.scheduler;

import io.tidemark.core.PermanentException;
import io.tidemark.core.RetriableException;
import io.tidemark.core.TidemarkException;
import io.tidemark.core.bus.EventBus;
import io.tidemark.policies.FireTimes;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Schedule;
import java.text.ParseException;
import java.time.Clock;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Date;
import java.util.HashSet;
import java.util.Objects;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TimeZone;
import java.util.UUID;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.quartz.CronExpression;
import org.quartz.CronScheduleBuilder;
import org.quartz.JobBuilder;
import org.quartz.JobDetail;
import org.quartz.JobKey;
import org.quartz.JobPersistenceException;
import org.quartz.ObjectAlreadyExistsException;
import org.quartz.Scheduler;
import org.quartz.SchedulerException;
import org.quartz.SimpleScheduleBuilder;
import org.quartz.Trigger;
import org.quartz.TriggerBuilder;
import org.quartz.TriggerKey;
import org.quartz.impl.SchedulerRepository;
import org.quartz.impl.StdSchedulerFactory;
import org.quartz.impl.matchers.GroupMatcher;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fires every policy of a {@link PolicySet} on its schedule and publishes, for each firing, one
 * {@link io.tidemark.core.event.SnapshotJob} per VM the policy's selector matches in the {@link
 * Inventory}: to {@code Topics.jobs(host)}, keyed by the VM name, with job id {@code
 * <policy>/<vm>/<fire time in epoch millis>} ({@link #jobId}). A redelivered or re-fired trigger
 * therefore yields the same job id, which downstream handlers deduplicate.
 *
 * <p>Contracts:
 *
 * <ul>
 *   <li>A failed publish is logged with the policy and the VM; the other VMs of the firing and later
 *       firings go on. A missed firing (scheduler stopped, threads busy) fires once as soon as
 *       possible, then the schedule continues.
 *   <li>Interval schedules start when the policy is scheduled, delayed by the jitter offset; cron
 *       schedules follow the expression in UTC, each firing delayed by the jitter offset. The offset
 *       is fixed per policy (derived from its name), below the jitter.
 *   <li>After {@link #reload} returns, no firing of a removed or replaced policy version publishes
 *       anything: reload waits for firings in progress.
 *   <li>Quartz decides when to fire on the system clock; the injected clock stamps events and gives
 *       the fire time of {@link #fireNow}.
 * </ul>
 *
 * <p>Quartz runs with a RAM job store and a small thread pool unless other properties are given
 * ({@link #defaultQuartzProperties()}); each instance gets a unique Quartz scheduler name. With a
 * persistent, clustered store ({@link QuartzJdbc}) all instances share the triggers: each fire time
 * is fired by one instance; starting an instance keeps a stored trigger whose schedule is unchanged
 * (and so its next fire time), and a firing cut short by a dead instance is re-run by another one
 * with the same job ids. All instances of a cluster must load the same policies. Methods are
 * thread-safe.
 */
public final class PolicyScheduler implements AutoCloseable {
    /** The Quartz group of the policy jobs and triggers. */
    public static final String JOB_GROUP = "tidemark-policies";

    private static final Logger log = LoggerFactory.getLogger(PolicyScheduler.class);
    private static final TimeZone UTC = TimeZone.getTimeZone("UTC");
    private static final String NAME_PROPERTY = StdSchedulerFactory.PROP_SCHED_INSTANCE_NAME;

    private final Scheduler quartz;
    private final SnapshotDispatcher dispatcher;
    private final Clock clock;
    private final ReadWriteLock lock = new ReentrantReadWriteLock();
    private volatile PolicySet policies = PolicySet.empty();

    private PolicyScheduler(Scheduler quartz, SnapshotDispatcher dispatcher, Clock clock) {
        this.quartz = quartz;
        this.dispatcher = dispatcher;
        this.clock = clock;
    }

    /**
     * Starts a scheduler for {@code policies} with the {@linkplain #defaultQuartzProperties() default
     * Quartz settings}.
     *
     * @throws PermanentException if Quartz cannot start or a policy cannot be scheduled
     */
    public static PolicyScheduler start(PolicySet policies, Inventory inventory, EventBus bus, Clock clock) {
        return start(policies, inventory, bus, clock, new Properties());
    }

    /**
     * Starts a scheduler for {@code policies}; {@code quartzOverrides} are laid over the {@linkplain
     * #defaultQuartzProperties() defaults} (for example a JDBC job store).
     *
     * @throws PermanentException if Quartz cannot start, the scheduler name is taken in this JVM, or
     *     a policy cannot be scheduled
     * @throws RetriableException if a persistent job store is unavailable
     */
    public static PolicyScheduler start(
            PolicySet policies, Inventory inventory, EventBus bus, Clock clock, Properties quartzOverrides) {
        Objects.requireNonNull(policies, "policies");
        Objects.requireNonNull(inventory, "inventory");
        Objects.requireNonNull(bus, "bus");
        Objects.requireNonNull(clock, "clock");
        Properties properties = defaultQuartzProperties();
        properties.putAll(quartzOverrides);
        String name = properties.getProperty(NAME_PROPERTY);
        Scheduler quartz;
        try {
            if (SchedulerRepository.getInstance().lookup(name) != null) {
                throw new PermanentException("a Quartz scheduler named " + name + " already runs in this JVM");
            }
            quartz = new StdSchedulerFactory(properties).getScheduler();
        } catch (SchedulerException e) {
            throw translate("cannot create the Quartz scheduler " + name, e);
        }
        PolicyScheduler scheduler = new PolicyScheduler(quartz, new SnapshotDispatcher(inventory, bus, clock), clock);
        try {
            quartz.setJobFactory(new PolicyJobFactory(scheduler::onTrigger));
            scheduler.reload(policies);
            scheduler.removeStaleJobs();
            quartz.start();
        } catch (SchedulerException e) {
            throw scheduler.abort(translate("cannot start the Quartz scheduler " + name, e));
        } catch (TidemarkException e) {
            throw scheduler.abort(e);
        }
        log.info("scheduler {} started with {} policies", name, policies.size());
        return scheduler;
    }

    /**
     * The Quartz properties used unless overridden: a unique scheduler name, a RAM job store, two
     * daemon worker threads, a 5 s misfire threshold, no update check. A new copy on each call.
     */
    public static Properties defaultQuartzProperties() {
        Properties p = new Properties();
        p.setProperty(NAME_PROPERTY, "tidemark-scheduler-" + UUID.randomUUID());
        p.setProperty(StdSchedulerFactory.PROP_SCHED_INSTANCE_ID, "NON_CLUSTERED");
        p.setProperty("org.quartz.scheduler.skipUpdateCheck", "true");
        p.setProperty("org.quartz.scheduler.makeSchedulerThreadDaemon", "true");
        p.setProperty(StdSchedulerFactory.PROP_THREAD_POOL_CLASS, "org.quartz.simpl.SimpleThreadPool");
        p.setProperty("org.quartz.threadPool.threadCount", "2");
        p.setProperty("org.quartz.threadPool.makeThreadsDaemons", "true");
        p.setProperty(StdSchedulerFactory.PROP_JOB_STORE_CLASS, "org.quartz.simpl.RAMJobStore");
        p.setProperty("org.quartz.jobStore.misfireThreshold", "5000");
        return p;
    }

    /**
     * The job id of the snapshot of {@code vm} from the firing of {@code policy} scheduled for
     * {@code scheduledFor}: {@code <policy>/<vm>/<epoch millis>}.
     */
    public static String jobId(String policy, String vm, Instant scheduledFor) {
        return SnapshotDispatcher.jobId(policy, vm, scheduledFor);
    }

    /**
     * Fires {@code policyName} now, in the calling thread, with the injected clock's current
     * instant (to the millisecond) as fire time, and returns what was published. Its schedule is
     * unaffected.
     *
     * @throws PermanentException if no such policy is loaded
     * @throws RetriableException if the inventory is unavailable
     * @throws IllegalStateException if the scheduler is closed
     */
    public Firing fireNow(String policyName) {
        lock.readLock().lock();
        try {
            requireOpen();
            Policy policy = policies.find(policyName)
                    .orElseThrow(() -> new PermanentException(
                            "no policy named '" + policyName + "'; loaded: " + String.join(", ", policies.names())));
            return dispatcher.dispatch(policy, clock.instant().truncatedTo(ChronoUnit.MILLIS));
        } finally {
            lock.readLock().unlock();
        }
    }

    /**
     * Replaces the loaded policies with {@code next}: unschedules removed policies, reschedules
     * changed ones (any difference, as {@link Policy#equals}), schedules new ones, and leaves
     * unchanged ones on their current schedule. Waits for firings in progress first.
     *
     * @throws PermanentException if a policy cannot be scheduled; the set may then be partly applied
     * @throws RetriableException if a persistent job store is unavailable
     * @throws IllegalStateException if the scheduler is closed
     */
    public void reload(PolicySet next) {
        Objects.requireNonNull(next, "next");
        lock.writeLock().lock();
        try {
            requireOpen();
            PolicySet previous = policies;
            // a changed policy keeps its job: schedule() replaces the trigger only if the schedule
            // changed. Deleting it here made each scheduler of a JDBC cluster that reloads the same
            // change replace the trigger the first one stored, and so fire it once more.
            for (Policy old : previous.policies()) {
                if (next.find(old.name()).isEmpty()) {
                    quartz.deleteJob(jobKey(old.name()));
                }
            }
            policies = next;
            for (Policy policy : next.policies()) {
                if (!previous.find(policy.name()).equals(Optional.of(policy))) {
                    schedule(policy);
                }
            }
        } catch (SchedulerException e) {
            throw translate("cannot reload the policies", e);
        } finally {
            lock.writeLock().unlock();
        }
    }

    /** The loaded policies. */
    public PolicySet policies() {
        return policies;
    }

    /**
     * When {@code policyName} fires next (before jitter), or empty if it is not scheduled, will not
     * fire again, or the scheduler is closed.
     */
    public Optional<Instant> nextFireTime(String policyName) {
        try {
            if (quartz.isShutdown()) {
                return Optional.empty();
            }
            Trigger trigger = quartz.getTrigger(triggerKey(policyName));
            return Optional.ofNullable(trigger).map(Trigger::getNextFireTime).map(Date::toInstant);
        } catch (SchedulerException e) {
            throw translate("cannot read the trigger of policy " + policyName, e);
        }
    }

    /** The name of the underlying Quartz scheduler, unique per instance unless configured. */
    public String schedulerName() {
        try {
            return quartz.getSchedulerName();
        } catch (SchedulerException e) {
            throw translate("cannot read the scheduler name", e);
        }
    }

    /** Stops firing and waits for firings in progress. Idempotent. */
    @Override
    public void close() {
        try {
            if (!quartz.isShutdown()) {
                quartz.shutdown(true);
                log.info("scheduler {} stopped", quartz.getSchedulerName());
            }
        } catch (SchedulerException e) {
            throw translate("cannot stop the Quartz scheduler", e);
        }
    }

    // ---- internals -------------------------------------------------------------------------------

    private void requireOpen() {
        boolean shutdown;
        try {
            shutdown = quartz.isShutdown();
        } catch (SchedulerException e) {
            throw translate("cannot read the scheduler state", e);
        }
        if (shutdown) {
            throw new IllegalStateException("the policy scheduler is closed");
        }
    }

    /** Shuts Quartz down after a failed start; returns {@code cause} for the caller to throw. */
    private TidemarkException abort(TidemarkException cause) {
        try {
            close();
        } catch (TidemarkException e) {
            cause.addSuppressed(e);
        }
        return cause;
    }

    /** Called by {@link PolicyJob} on a Quartz thread. */
    private void onTrigger(String policyName, Instant scheduledFor) {
        lock.readLock().lock();
        try {
            Optional<Policy> policy = policies.find(policyName);
            if (policy.isEmpty()) {
                log.debug("policy {} is no longer loaded; firing for {} ignored", policyName, scheduledFor);
                return;
            }
            Firing firing = dispatcher.dispatch(policy.get(), scheduledFor);
            log.info(
                    "policy {} fired for {}: {} jobs published, {} failed",
                    policyName,
                    scheduledFor,
                    firing.jobIds().size(),
                    firing.failedVms().size());
        } finally {
            lock.readLock().unlock();
        }
    }

    /**
     * Schedules {@code policy} unless the job store already holds its job with the same schedule and
     * a trigger: a persistent store shared by a cluster keeps the trigger, and so its next fire time,
     * when an instance (re)starts. A missing job is added without replacing (another instance may add
     * it at the same time); a job with another schedule is replaced.
     */
    private void schedule(Policy policy) throws SchedulerException {
        String schedule = scheduleKey(policy.schedule());
        JobDetail existing = quartz.getJobDetail(jobKey(policy.name()));
        if (existing != null
                && schedule.equals(existing.getJobDataMap().getString(PolicyJob.SCHEDULE))
                && quartz.getTrigger(triggerKey(policy.name())) != null) {
            log.debug("policy {} keeps its stored trigger ({})", policy.name(), schedule);
            return;
        }
        JobDetail job = JobBuilder.newJob(PolicyJob.class)
                .withIdentity(jobKey(policy.name()))
                .usingJobData(PolicyJob.POLICY, policy.name())
                .usingJobData(PolicyJob.SCHEDULE, schedule)
                .requestRecovery(true) // a firing cut short by a dead cluster instance re-runs, same job ids
                .build();
        long offset = jitterOffsetMillis(policy);
        TriggerBuilder<Trigger> trigger = TriggerBuilder.newTrigger()
                .withIdentity(triggerKey(policy.name()))
                .forJob(job);
        Trigger built;
        if (policy.schedule() instanceof Schedule.Interval interval) {
            built = trigger.startAt(new Date(System.currentTimeMillis() + offset)) // Quartz runs on system time
                    .withSchedule(SimpleScheduleBuilder.simpleSchedule()
                            .withIntervalInMilliseconds(interval.every().toMillis())
                            .repeatForever()
                            .withMisfireHandlingInstructionFireNow())
                    .build();
        } else {
            Schedule.Cron cron = (Schedule.Cron) policy.schedule();
            built = trigger.usingJobData(PolicyJob.DELAY_MILLIS, offset)
                    .withSchedule(CronScheduleBuilder.cronSchedule(cronExpression(policy.name(), cron.expression()))
                            .withMisfireHandlingInstructionFireAndProceed())
                    .build();
        }
        if (existing == null) {
            try {
                quartz.scheduleJob(job, Set.of(built), false);
            } catch (ObjectAlreadyExistsException e) {
                log.debug("policy {} was scheduled by another instance meanwhile", policy.name());
            }
        } else {
            quartz.scheduleJob(job, Set.of(built), true);
        }
    }

    /** What the trigger of a policy depends on, stored with its job to detect a changed schedule. */
    static String scheduleKey(Schedule schedule) {
        if (schedule instanceof Schedule.Interval interval) {
            return "interval " + interval.every() + " jitter " + interval.jitter();
        }
        Schedule.Cron cron = (Schedule.Cron) schedule;
        return "cron " + cron.expression() + " jitter " + cron.jitter();
    }

    /** Drops jobs a persistent store remembers for policies that are no longer loaded. */
    private void removeStaleJobs() throws SchedulerException {
        Set<String> loaded = new HashSet<>(policies.names());
        for (JobKey key : quartz.getJobKeys(GroupMatcher.jobGroupEquals(JOB_GROUP))) {
            if (!loaded.contains(key.getName())) {
                quartz.deleteJob(key);
            }
        }
    }

    private static CronExpression cronExpression(String policy, String expression) {
        try {
            CronExpression cron = new CronExpression(expression);
            cron.setTimeZone(UTC);
            return cron;
        } catch (ParseException e) {
            throw new PermanentException("policy " + policy + ": invalid cron expression '" + expression + "'", e);
        }
    }

    /** A fixed offset in [0, jitter), derived from the policy name so it is stable across restarts. */
    static long jitterOffsetMillis(Policy policy) {
        return FireTimes.jitterOffset(policy).toMillis();
    }

    private static JobKey jobKey(String policy) {
        return JobKey.jobKey(policy, JOB_GROUP);
    }

    private static TriggerKey triggerKey(String policy) {
        return TriggerKey.triggerKey(policy, JOB_GROUP);
    }

    private static TidemarkException translate(String what, SchedulerException e) {
        String message = what + ": " + e.getMessage();
        if (e instanceof JobPersistenceException && !(e instanceof ObjectAlreadyExistsException)) {
            return new RetriableException(message, e);
        }
        return new PermanentException(message, e);
    }
}
