package io.tidemark.scheduler.hook;

import io.tidemark.core.bus.Topics;
import io.tidemark.core.event.Event;
import io.tidemark.core.event.JobFailed;
import io.tidemark.core.event.ReplicaCommitted;
import io.tidemark.core.event.RestorePointCreated;
import io.tidemark.core.event.SnapshotCaptured;
import io.tidemark.core.event.SnapshotJob;
import io.tidemark.testkit.FakeClock;
import io.tidemark.testkit.RecordingEventBus;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Plays the workers and the replicator on a {@link RecordingEventBus}: for each snapshot job it
 * publishes, synchronously, the outcome events the test asked for, stepping the clock by {@link
 * #STEP} before each.
 */
final class FakeDownstream {

    static final Duration STEP = Duration.ofSeconds(1);

    /** How far a VM's job gets. */
    enum Outcome {
        NOTHING,
        CAPTURED,
        COMMITTED,
        REPLICATED,
        FAILED,
        /** Nothing, but the clock jumps an hour: every wait times out. */
        STALLED
    }

    private final RecordingEventBus bus;
    private final FakeClock clock;
    private final Map<String, Outcome> outcomes = new ConcurrentHashMap<>();
    private volatile Outcome otherwise = Outcome.REPLICATED;

    FakeDownstream(RecordingEventBus bus, FakeClock clock, List<String> hosts) {
        this.bus = bus;
        this.clock = clock;
        bus.subscribe("fake-workers", hosts.stream().map(Topics::jobs).toList(), this::onJob);
    }

    FakeDownstream on(String vm, Outcome outcome) {
        outcomes.put(vm, outcome);
        return this;
    }

    FakeDownstream otherwise(Outcome outcome) {
        otherwise = outcome;
        return this;
    }

    private void onJob(String topic, Event event) {
        if (!(event.payload() instanceof SnapshotJob job)) {
            return;
        }
        String id = event.jobId();
        switch (outcomes.getOrDefault(job.vm(), otherwise)) {
            case NOTHING -> {}
            case STALLED -> clock.advance(Duration.ofHours(1));
            case FAILED -> {
                clock.advance(STEP);
                publish(Topics.JOB_STATUS, id, new JobFailed(job.vm(), "backup", "QMP socket refused", false));
            }
            case CAPTURED -> captured(id, job);
            case COMMITTED -> {
                captured(id, job);
                committed(id, job);
            }
            case REPLICATED -> {
                captured(id, job);
                committed(id, job);
                for (String target : job.targets()) {
                    clock.advance(STEP);
                    publish(
                            Topics.REPLICATION,
                            id,
                            new ReplicaCommitted(job.vm(), "rp-" + job.vm(), target, job.scheduledFor(), 3, 300));
                }
            }
        }
    }

    private void captured(String id, SnapshotJob job) {
        clock.advance(STEP);
        publish(Topics.JOB_STATUS, id, new SnapshotCaptured(job.vm(), job.scheduledFor()));
    }

    private void committed(String id, SnapshotJob job) {
        clock.advance(STEP);
        publish(
                Topics.RESTORE_POINTS,
                id,
                new RestorePointCreated(
                        job.vm(), "rp-" + job.vm(), job.policy(), job.targets(), job.scheduledFor(), 100, 10));
    }

    private void publish(String topic, String jobId, io.tidemark.core.event.EventPayload payload) {
        bus.publish(topic, payload.vm(), Event.of(jobId, clock.instant(), payload));
    }
}
