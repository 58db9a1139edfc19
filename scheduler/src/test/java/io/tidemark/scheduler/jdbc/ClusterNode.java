package io.tidemark.scheduler.jdbc;

import io.tidemark.core.bus.EventBus;
import io.tidemark.core.event.Event;
import io.tidemark.policies.Policy;
import io.tidemark.policies.PolicySet;
import io.tidemark.policies.Schedule;
import io.tidemark.policies.VmSelector;
import io.tidemark.scheduler.InMemoryInventory;
import io.tidemark.scheduler.PolicyScheduler;
import io.tidemark.scheduler.QuartzJdbc;
import io.tidemark.testkit.fixture.PostgresFixture;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * One scheduler instance of {@link ClusteredSchedulerIT}, run in its own JVM: {@value #POLICY}
 * every {@link #INTERVAL} over {@link #VMS} on the clustered JDBC store, publishing each job id as
 * one flushed line {@code <job id> <pid> <publish time ms>} to a file. Writes a ready file once started, then runs
 * until killed.
 *
 * <p>Arguments: {@code JDBC_URL OUT_FILE READY_FILE}.
 */
public final class ClusterNode {
    static final String POLICY = "nightly";
    static final Duration INTERVAL = Duration.ofSeconds(1);
    static final List<String> VMS = List.of("vm-1", "vm-2", "vm-3");
    static final String CLUSTER = "tidemark-it";
    static final Duration CHECKIN = Duration.ofSeconds(1);
    /** Above the failover time (check-in + 7.5 s + check-in), so a failover loses no fire time. */
    static final Duration MISFIRE_THRESHOLD = Duration.ofSeconds(20);

    private ClusterNode() {}

    /** Starts the instance and blocks until the JVM is killed. */
    public static void main(String[] args) throws InterruptedException {
        if (args.length != 3) {
            throw new IllegalArgumentException("usage: ClusterNode JDBC_URL OUT_FILE READY_FILE");
        }
        InMemoryInventory inventory = new InMemoryInventory();
        VMS.forEach(vm -> inventory.put(vm, "host-a", Map.of()));
        Policy policy = Policy.of(
                POLICY,
                VmSelector.ofNames(VMS.toArray(String[]::new)),
                Schedule.Interval.every(INTERVAL),
                Duration.ofHours(1),
                List.of("offsite"));
        QuartzJdbc jdbc = QuartzJdbc.of(args[0], PostgresFixture.USER, "", CLUSTER)
                .withCheckinInterval(CHECKIN)
                .withMisfireThreshold(MISFIRE_THRESHOLD);
        LineFileBus bus = new LineFileBus(Path.of(args[1]));
        PolicyScheduler.start(PolicySet.of(policy), inventory, bus, Clock.systemUTC(), jdbc.properties());
        try {
            Files.writeString(
                    Path.of(args[2]), Long.toString(ProcessHandle.current().pid()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        new CountDownLatch(1).await(); // until killed
    }

    /** Appends {@code <job id> <pid> <publish time ms>} per publish, flushed, so another process can count them. */
    private static final class LineFileBus implements EventBus {
        private final Writer out;
        private final long pid = ProcessHandle.current().pid();

        LineFileBus(Path file) {
            try {
                out = Files.newBufferedWriter(
                        file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        @Override
        public synchronized void publish(String topic, String key, Event event) {
            try {
                out.write(event.jobId() + " " + pid + " " + System.currentTimeMillis() + "\n");
                out.flush();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        @Override
        public Subscription subscribe(String group, List<String> topics, EventHandler handler) {
            return () -> {};
        }

        @Override
        public void close() {}
    }
}
