package io.tidemark.scheduler;

import org.quartz.Job;
import org.quartz.Scheduler;
import org.quartz.SchedulerException;
import org.quartz.spi.JobFactory;
import org.quartz.spi.TriggerFiredBundle;

/** Makes {@link PolicyJob}s with their handler injected; no static state, one factory per scheduler. */
final class PolicyJobFactory implements JobFactory {
    private final PolicyJob.FiringHandler handler;

    PolicyJobFactory(PolicyJob.FiringHandler handler) {
        this.handler = handler;
    }

    @Override
    public Job newJob(TriggerFiredBundle bundle, Scheduler scheduler) throws SchedulerException {
        Class<? extends Job> type = bundle.getJobDetail().getJobClass();
        if (type != PolicyJob.class) {
            throw new SchedulerException("this scheduler runs only policy jobs, not " + type.getName());
        }
        return new PolicyJob(handler);
    }
}
