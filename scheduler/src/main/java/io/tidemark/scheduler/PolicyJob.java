package io.tidemark.scheduler;

import java.time.Instant;
import java.util.Date;
import org.quartz.DisallowConcurrentExecution;
import org.quartz.Job;
import org.quartz.JobDataMap;
import org.quartz.JobExecutionContext;
import org.quartz.ObjectAlreadyExistsException;
import org.quartz.SchedulerException;
import org.quartz.SimpleScheduleBuilder;
import org.quartz.TriggerBuilder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Quartz job of one policy. Its constructor does no work; {@link PolicyJobFactory} gives it the
 * handler. The job data holds only strings and longs (the policy name, its schedule, and on a
 * delayed trigger the original fire time), so a persistent job store can keep it.
 *
 * <p>A trigger carrying {@link #DELAY_MILLIS} (a cron schedule with jitter) does not fire the policy
 * itself: it schedules a one-shot trigger at fire time + delay that carries the original fire time
 * in {@link #SCHEDULED_FOR}, so job ids stay tied to the cron time.
 */
@DisallowConcurrentExecution
final class PolicyJob implements Job {
    static final String POLICY = "policy";
    static final String SCHEDULE = "schedule";
    static final String DELAY_MILLIS = "delayMillis";
    static final String SCHEDULED_FOR = "scheduledFor";

    private static final Logger log = LoggerFactory.getLogger(PolicyJob.class);

    private final FiringHandler handler;

    PolicyJob(FiringHandler handler) {
        this.handler = handler;
    }

    @Override
    public void execute(JobExecutionContext context) {
        JobDataMap triggerData = context.getTrigger().getJobDataMap();
        String policy = context.getJobDetail().getJobDataMap().getString(POLICY);
        Date fireTime = context.getScheduledFireTime();
        if (triggerData.containsKey(DELAY_MILLIS) && triggerData.getLong(DELAY_MILLIS) > 0) {
            delay(context, policy, fireTime, triggerData.getLong(DELAY_MILLIS));
            return;
        }
        Instant scheduledFor = triggerData.containsKey(SCHEDULED_FOR)
                ? Instant.ofEpochMilli(triggerData.getLong(SCHEDULED_FOR))
                : fireTime.toInstant();
        try {
            handler.fire(policy, scheduledFor);
        } catch (RuntimeException e) { // keep firing on the next schedule; Quartz would only log it
            log.error("policy {}: firing for {} failed", policy, scheduledFor, e);
        }
    }

    private static void delay(JobExecutionContext context, String policy, Date fireTime, long delayMillis) {
        String name = policy + "@" + fireTime.getTime();
        try {
            context.getScheduler()
                    .scheduleJob(TriggerBuilder.newTrigger()
                            .withIdentity(name, PolicyScheduler.JOB_GROUP)
                            .forJob(context.getJobDetail().getKey())
                            .startAt(new Date(fireTime.getTime() + delayMillis))
                            .usingJobData(SCHEDULED_FOR, fireTime.getTime())
                            .withSchedule(
                                    SimpleScheduleBuilder.simpleSchedule().withMisfireHandlingInstructionFireNow())
                            .build());
        } catch (ObjectAlreadyExistsException e) { // a recovered firing (ADR 7): the delayed one is there
            log.debug("policy {}: the jittered firing for {} is already scheduled", policy, fireTime.toInstant());
        } catch (SchedulerException e) {
            log.error("policy {}: could not schedule the jittered firing for {}", policy, fireTime.toInstant(), e);
        }
    }

    /** What a firing does, given the policy name and the fire time. */
    @FunctionalInterface
    interface FiringHandler {
        void fire(String policy, Instant scheduledFor);
    }
}
