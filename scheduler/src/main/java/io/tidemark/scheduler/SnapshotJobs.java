package io.tidemark.scheduler;

import io.tidemark.core.event.SnapshotJob;
import io.tidemark.core.event.Trigger;
import io.tidemark.core.event.TriggerKind;
import io.tidemark.policies.FireTimes;
import io.tidemark.policies.Policy;
import io.tidemark.policies.Schedule;
import java.text.ParseException;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Optional;
import java.util.TimeZone;
import org.quartz.CronExpression;

/** The one place a policy's capture options and a job's validity become part of a {@link SnapshotJob}. */
public final class SnapshotJobs {

    /**
     * How long a job of anything but the schedule (a pre-deploy hook, a manual request) is worth
     * starting after it was submitted: the longest a pipeline waits for its hook ({@code --timeout}
     * is at most 1 h). A snapshot taken later would no longer be "before the deploy".
     */
    public static final Duration REQUEST_VALIDITY = Duration.ofHours(1);

    private SnapshotJobs() {}

    /**
     * The job that snapshots {@code vm} on {@code host} for {@code policy}, carrying the policy's
     * consistency, full cadence and read bandwidth and I/O limits to the worker, valid until {@link
     * #notAfter}.
     */
    public static SnapshotJob of(
            Policy policy, String vm, String host, Trigger trigger, List<String> targets, Instant scheduledFor) {
        return new SnapshotJob(
                vm,
                host,
                policy.name(),
                trigger,
                targets,
                scheduledFor,
                Optional.of(policy.consistency()),
                policy.fullEvery(),
                policy.qos().readBytesPerSecond(),
                notAfter(policy, trigger, scheduledFor),
                policy.qos().readIopsPerSecond());
    }

    /**
     * The latest instant a job may start. A scheduled job is superseded by the policy's next firing:
     * {@code scheduledFor + interval} for an interval schedule (whose fire times already include the
     * jitter offset), the next time of the cron expression plus the policy's jitter offset for a cron
     * schedule; none when the cron expression never fires again. Any other job (a hook's, a manual
     * one): {@link #REQUEST_VALIDITY} after {@code scheduledFor}.
     */
    static Optional<Instant> notAfter(Policy policy, Trigger trigger, Instant scheduledFor) {
        if (!trigger.is(TriggerKind.SCHEDULE)) {
            return Optional.of(scheduledFor.plus(REQUEST_VALIDITY));
        }
        if (policy.schedule() instanceof Schedule.Interval interval) {
            return Optional.of(scheduledFor.plus(interval.every()));
        }
        Schedule.Cron cron = (Schedule.Cron) policy.schedule();
        try {
            CronExpression expression = new CronExpression(cron.expression());
            expression.setTimeZone(TimeZone.getTimeZone("UTC"));
            return Optional.ofNullable(expression.getNextValidTimeAfter(Date.from(scheduledFor)))
                    .map(next -> next.toInstant().plus(FireTimes.jitterOffset(policy)));
        } catch (ParseException e) { // the policy parser validated it: a job that never expires is still right
            return Optional.empty();
        }
    }
}
